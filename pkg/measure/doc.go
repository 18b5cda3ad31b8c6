// Package measure measures, node by node, what mount namespace
// encapsulation changes for systemd: PID 1's CPU use, the mounts PID 1 and
// kubelet see, the mount units systemd tracks, how often PID 1's mount table
// changes, and the pod count that drives all of these.
//
// How: ProbeScript runs for a window in the same privileged hostPID pod as
// verify's probe (verify.PodFor) and hands back a strict key=value report
// (ParseReport); FromReport turns it into a NodeMeasurement, NewMeasureReport
// makes the versioned document, Compare sets it against a baseline read by
// ReadBaseline.
//
// Limits: CPU is PID 1's only (not other systemd processes, not the kernel
// work mounts cause), from its utime+stime in clock ticks (10 ms); churn is
// sampled every ~200 ms, so a mount made and removed between two samples is
// not seen, and a remount counts twice (its old line goes, a new one comes);
// the probe's own sampling reads PID 1's mount table but does not add to
// PID 1's CPU time.
package measure
