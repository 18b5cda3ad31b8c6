// Package verify proves, node by node, whether kubelet and the container
// runtime run in a private mount namespace (OpenShift mount namespace
// encapsulation).
//
// The pieces, from the node outwards:
//
//   - ProbeScript: a fixed POSIX sh script run in a privileged hostPID debug
//     pod; it writes a versioned key=value report to the pod's termination
//     message.
//   - ParseReport / ParseReportUnits: the strict parser for that report,
//     which treats it as untrusted input (size limit, grammar, known keys,
//     value charset); the wrap.<i>.* keys follow the number of wrapped units
//     the probe was given as arguments.
//   - Classify / ClassifyPod: turn a report, or a pod that never produced one,
//     into a NodeResult with a State (Encapsulated, NotEncapsulated, Split,
//     Unknown with a reason), the mechanism and the extra checks.
//   - NamespaceFor / PodFor: the temporary namespace and the per-node pod.
//   - Engine: one namespace per run, one pod per node with bounded
//     parallelism, results through one watch, cleanup whatever happens.
package verify
