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
// Fault knobs (FailRender, DegradeNode, DegradeNodeOnUpdate, SetPaused) let a
// test make a pool or a node misbehave at runtime.
package mcosim
