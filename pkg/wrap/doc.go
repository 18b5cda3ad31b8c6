// Package wrap makes host systemd services run inside the Kubernetes mount
// namespace, the one kubens.service pins at /run/kubens/mnt and kubelet and
// CRI-O join: a drop-in replaces the unit's ExecStart with the same command
// run through /usr/bin/kubensenter, which enters that namespace when it
// exists and runs the command as it is otherwise. It is what kubensmnt's
// mkWrapperDropin helper does on one node, made for every node of a pool
// (pkg/manifests.RenderWrap puts the drop-ins in a MachineConfig).
//
// How: ReadProbe runs `systemctl cat` for the units on each node through
// the verify engine (verify.RunProbe) and hands back a strict, line-based
// report (ParseReport), filtered on the node to the lines that decide
// ExecStart and User so that it fits in a termination message;
// ParseSystemctlCat reads that output by systemd's rules into the unit's
// effective ExecStart, and tells whether the unit is wrapped already.
// DropIn writes the drop-in for the commands (ValidateCommand says which
// can be wrapped) and ParseDropIn reads one back.
//
// Limits: a unit's commands are taken as systemd prints them; what they
// mean at run time (variables, specifiers, a plain name looked up in PATH)
// is left to systemd, in the drop-in as in the unit. The "@" prefix cannot
// be wrapped, nor several commands on one line (";"). A "# /path" comment
// right after an empty line in a unit file reads as a file header, as it
// does to a person reading systemctl cat. The service must run as root to
// enter another namespace (UnitFile.RunsAsRoot).
package wrap
