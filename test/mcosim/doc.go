// Package mcosim is a simulated Machine Config Operator for tests and for the
// local cluster (make cluster-up).
//
// It is the yardstick the plugin's enable/disable/wait/status are measured
// against, so it follows the real operator (openshift/machine-config-operator,
// pkg/controller/render, pkg/controller/node, pkg/daemon) where the plugin can
// observe the difference, and it shares no code with the plugin:
//
//   - a render controller that, RenderDelay after a MachineConfig or pool change,
//     merges the MachineConfigs a pool selects into rendered-<pool>-<hash> and
//     points the pool's spec.configuration at it (an Update of the pool spec, so
//     metadata.generation moves and status.observedGeneration lags until the
//     node controller catches up, as on a real cluster);
//   - a node controller that hands the new config to at most maxUnavailable
//     nodes at a time through the desiredConfig annotation (ready nodes only,
//     by zone, then oldest first) and computes the pool status from the node
//     annotations the way calculateStatus does;
//   - a daemon per node (the MCD's part): state=Working, drain through the
//     drain controller (desiredDrain=drain-<config>, wait for
//     lastAppliedDrain), on an RHCOS-like machine the rendered config
//     written into the node's files as the MCD writes it,
//     post-config-action=Rebooting, reboot (a machine's systemd halts and
//     boots again; other real nodes go through a Rebooter, into or out of
//     encapsulation depending on whether kubens.service is enabled in the
//     new rendered config), wait for Ready
//     with no deadline, then post-config-action="", uncordon through the drain
//     controller, and currentConfig=desiredConfig, Done. The state is never
//     "Rebooting";
//   - a drain controller that cordons (and stands in for draining) or
//     uncordons a node when its desiredDrain differs from lastAppliedDrain,
//     then sets lastAppliedDrain=desiredDrain.
//
// Which MCO function each part follows (MCO paths under pkg/controller/
// unless said otherwise; read at openshift/machine-config-operator 7ff337a):
//
//   - render.go renderPool, MCO.render: render/render_controller.go
//     syncMachineConfigPool (a selector that selects everything renders
//     nothing; no selected config is "no MachineConfigs found matching
//     selector"), syncGeneratedMachineConfig (create the rendered config,
//     Update the pool spec, then ValidateMachineConfigSize's "size
//     validation failed: ...") and generateRenderedMachineConfig (every
//     selected config through ValidateMachineConfig, in name order, before
//     the merge; "could not generate rendered MachineConfig: ...").
//     setRenderDegraded and clearRenderDegraded are syncFailingStatus and
//     syncAvailableStatus: RenderDegraded with no reason and the message
//     "Failed to render configuration for pool <pool>: <error>", which never
//     names the config at fault.
//   - merge.go: sortForMerge and mergeConfigs are common/helpers.go
//     MergeMachineConfigs (worker-role configs first, each group by name;
//     Ignition merged with the empty-compression guard, files set to
//     overwrite, kernel arguments and extensions concatenated, FIPS,
//     kernelType, kernel-devel only with the default kernel, OS images from
//     user configs only). renderedName is render/hash.go
//     getMachineConfigHashedName in spirit (md5 of the merged spec; not the
//     MCO's salt and YAML, so the names differ from a real cluster's).
//   - ignition.go: parseAnySpec is common/helpers.go IgnParseWrapper (3.0 to
//     3.5 through Ignition's ParseCompatibleVersion, else 2.2 through
//     github.com/coreos/ignition/config/v2_2, with its "unknown version" and
//     "invalid version" messages); parseAndConvert is ParseAndConvertConfig;
//     dedupeV2 is removeIgnDuplicateFilesUnitsUsers; convertV2 is the
//     2.2 -> 3.2 converter of common/ignition_converter.go (v2_3.Translate,
//     ign-converter's v23tov30 with root at /, Ignition's v3_1 and v3_2
//     translate) followed by its 3.2 -> 3.5 steps (v3_3, v3_4, v3_5
//     translate); validateIgnition is ValidateIgnition (with
//     validateIgn2FileModes/validateIgn3FileModes); validateMachineConfig is
//     ValidateMachineConfig (kernelType, Ignition, the SupportedExtensions
//     allow-list); validateRenderedSize is ValidateMachineConfigSize
//     (MaxMachineConfigSize, 1.5 MiB).
//   - nodectl.go syncPool: node/node_controller.go syncMachineConfigPool
//     and updatePools (returns without touching a pool whose
//     spec.configuration.name is empty, so a never-rendered pool has no
//     status at all; a paused pool gets its status only), with topologyWrites
//     as setClusterConfigAnnotation (the controlPlaneTopology annotation on
//     every node of the pool), updateCandidates as getAllCandidateMachines
//     (capacity = maxUnavailable minus the nodes IsUnavailableForUpdate,
//     minus the nodes failing this config; candidates that are not
//     IsNodeReady, so NotReady or cordoned, are skipped) followed by
//     updateCandidateMachines' cut, sortCandidates as sortNodeList (zone
//     label first, by zone; unlabelled last; oldest creationTimestamp first
//     within each), and targetNodes as setDesiredAnnotations. Not simulated:
//     the master pool's deferral of the operator's node, the
//     master/arbiter coordination of HighlyAvailableArbiter clusters, the
//     UpdateInProgress taint, image-based (layered) pools.
//   - status.go: calculateStatus is node/status.go calculateStatus; the
//     node predicates are common's LayeredNodeState (IsNodeReady, IsDone,
//     IsUnavailableForUpdate, IsNodeMCDFailing) as common/helpers.go
//     GetMachinesByState sorts nodes with them; setCondition is apihelpers'
//     SetMachineConfigPoolCondition.
//   - selector.go: poolForNode is node_controller.go getPrimaryPoolForNode;
//     maxUnavailable is node_controller.go maxUnavailable (the arbiter pool
//     is always 1: one node at a time); configsForPool is the render
//     controller's selection of configs by machineConfigSelector.
//   - bootstrap.go: what the installer and the MCO's bootstrap
//     (render.RunBootstrap) leave on a new cluster: built-in pools, base
//     configs (templates.go, standing in for the templates), a rendered
//     config per pool, every node Done at it; status only for pools that
//     rendered.
//   - daemon.go (the MCD; MCO paths under pkg/daemon/): syncDaemon is
//     daemon.go syncNode as far as the annotations go (firstboot at the
//     pool's config, firstBootAnnotations; an update when desiredConfig
//     moved; at boot with current == desired, updateConfigAndState). update
//     is update.go update: workingAnnotations is its guard before
//     writer.go SetWorking (state=Working unless the fresh state is
//     Degraded or Unreconcilable, so a retry never resets a Degraded node,
//     and the reason is left alone); then drain.go performDrain; then
//     update.go reboot, whose rebootingAnnotations write
//     post-config-action=Rebooting (constants.go
//     MachineConfigDaemonPostConfigAction, value
//     MachineConfigDaemonStateRebooting) and leave the state Working. A
//     step that fails (the rendered config cannot be read or parsed, the
//     drain wait times out, a DegradeNode knob) writes Degraded with the
//     reason (writer.go SetDegraded through daemon.go updateErrorState) and
//     is retried with backoff; API errors are only retried. After the
//     reboot waitReady has no deadline: the MCD of a machine that does not
//     boot never runs, so such a node stays Working, post-config-action
//     Rebooting, NotReady and unavailable, and its pool Updating, with no
//     Degraded at all. complete is what the rebooted MCD does: syncNode's
//     bootedAnnotations (post-config-action set to ""), then
//     updateConfigAndState's completeUpdate (desiredDrain=uncordon-<config>,
//     wait for lastAppliedDrain) and writer.go SetDone (doneAnnotations).
//     On an RHCOS-like machine (the Rebooter is a MachineHost and the
//     node one of its machines) the daemon writes the new rendered config
//     over the one the node is at (writer.go WriteConfig, update.go
//     updateFiles), then reboots it with RebootMachine: whether kubelet and
//     CRI-O come back encapsulated follows from the units alone. Other real
//     nodes are rebooted by Rebooter.Reboot into the mode the config asks
//     for; object-only nodes take StepDelay and RebootDuration.
//   - writer.go (MCO paths under pkg/daemon/ but common/, which is
//     pkg/controller/common): WriteConfig is update.go updateFiles for a
//     node with a real systemd: file_writers.go writeFiles
//     (common/helpers.go DecodeIgnitionFileContents, mode,
//     writeFileAtomically); update.go writeUnits over the units added or
//     changed (common/helpers.go GetChangedConfigUnitsByType), with
//     file_writers.go writeUnit and writeDropins (mask as a link to
//     /dev/null, disable before rewriting an enabled unit, an empty drop-in
//     removed), then one enableUnits and one disableUnits call, and
//     presetUnit for units that say nothing; then update.go deleteStaleData
//     (with isPathInDropins and presetUnit). Everything goes under the
//     machine's root, links resolved as in the MCD's chroot. The
//     directories and links checks are common/reconcile.go
//     isConfigReconcilable's; at first boot they are Ignition's to write.
//     Not simulated: orig-file backups and restores, the forcefile, SSH
//     keys, kernel arguments, extensions, the OS image.
//   - disruption.go: the node disruption policy of MachineConfiguration/
//     cluster (operator.openshift.io/v1, 4.17+), as update.go
//     calculatePostConfigChangeNodeDisruptionAction(FromMCDiffs) applies it:
//     the units and file paths that changed between the node's current and
//     new rendered config, matched by unit name and closest file path; any
//     uncovered change or Reboot action reboots. Otherwise the daemon drains
//     only for Drain, runs Reload/Restart/DaemonReload through a machine's
//     systemd, and goes to Done without a reboot (no Rebooter call), so
//     kubelet and CRI-O stay as they were booted (BootedConfig). Read from
//     spec.nodeDisruptionPolicy (no operator loop fills the status here), and
//     without the operator's default policies; no object: always reboot.
//   - drain.go: drainRequired is pkg/daemon/drain.go drainRequired with
//     pkg/daemon/daemon.go getControlPlaneTopology (no drain when the node's
//     controlPlaneTopology annotation is SingleReplica; missing or unknown
//     counts as HighlyAvailable); requestDrain is performDrain's (skip when
//     lastAppliedDrain is drain-<config> already; 1 hour bound) and
//     completeUpdate's (10 minute bound) request-and-wait on
//     desiredDrain/lastAppliedDrain (constants.go DesiredDrainerAnnotationKey,
//     LastAppliedDrainerAnnotationKey, DrainerStateDrain/Uncordon);
//     drainRequest and syncDrain are
//     pkg/controller/drain/drain_controller.go syncNode (nothing when desired == lastApplied; "uncordon" uncordons,
//     "drain" cordons and drains, and does not answer when the node was
//     uncordoned meanwhile; another verb is an error) and drainNode, except
//     that no pod is evicted: the drain is StepDelay. clusterTopology is the
//     installer's determineTopologies (1 control-plane node SingleReplica,
//     2 DualReplica or HighlyAvailableArbiter with an arbiter node, else
//     HighlyAvailable), from the nodes at Start unless
//     Options.ControlPlaneTopology says otherwise; so the default local
//     cluster (1 master, 2 workers) is SingleReplica and never drains, as
//     a real one of that shape.
//
// The admission side (a custom pool must select the worker configs: the
// MCO's ValidatingAdmissionPolicy custom-machine-config-pool-selector) is
// the apiserver's, installed by test/harness/controlplane.
//
// Fault knobs (FailRender, DegradeNode, DegradeNodeOnUpdate, SetPaused) let a
// test make a pool or a node misbehave at runtime. HoldRender, Mark,
// SyncedSince and Resync let it order its checks against the controllers
// instead of sleeping.
package mcosim
