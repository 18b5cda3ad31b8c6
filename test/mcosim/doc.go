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
//     nodes at a time through the desiredConfig annotation and computes the pool
//     status from the node annotations the way calculateStatus does;
//   - a daemon per node (the MCD's part): Working, cordon, Rebooting, reboot
//     (through a Rebooter, into or out of encapsulation depending on whether
//     kubens.service is enabled in the new rendered config), wait for Ready,
//     then currentConfig=desiredConfig, Done, uncordon.
//
// Which MCO function each part follows (MCO paths under pkg/controller/):
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
//     (returns without touching a pool whose spec.configuration.name is
//     empty, so a never-rendered pool has no status at all), with
//     updateCandidates as getAllCandidateMachines and targetNodes as
//     updateCandidateMachines/setDesiredAnnotations.
//   - status.go: calculateStatus is node/status.go calculateStatus; the
//     node predicates are common's LayeredNodeState (IsNodeReady, IsDone,
//     IsUnavailableForUpdate, IsNodeMCDFailing) as common/helpers.go
//     GetMachinesByState sorts nodes with them; setCondition is apihelpers'
//     SetMachineConfigPoolCondition.
//   - selector.go: poolForNode is node_controller.go getPrimaryPoolForNode;
//     maxUnavailable is node_controller.go maxUnavailable; configsForPool is the render
//     controller's selection of configs by machineConfigSelector.
//   - bootstrap.go: what the installer and the MCO's bootstrap
//     (render.RunBootstrap) leave on a new cluster: built-in pools, base
//     configs (templates.go, standing in for the templates), a rendered
//     config per pool, every node Done at it; status only for pools that
//     rendered.
//   - daemon.go: the MCD's update (daemon/update.go) and firstboot as far as
//     the annotations and the reboot go.
//
// The admission side (a custom pool must select the worker configs: the
// MCO's ValidatingAdmissionPolicy custom-machine-config-pool-selector) is
// the apiserver's, installed by test/harness/controlplane.
//
// Fault knobs (FailRender, DegradeNode, DegradeNodeOnUpdate, SetPaused) let a
// test make a pool or a node misbehave at runtime.
package mcosim
