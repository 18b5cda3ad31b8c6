# pidof_comm prints the PID of the process whose comm is exactly $1, or
# "none". Exact match matters: containerd-shim must not pass for containerd.
# There may be several: a kubelet or CRI-O nested in a pod (kind, clusters in
# clusters, CI) runs in the host PID namespace too, and can have the lower
# PID (the node's own kubelet restarted after it). The node's own daemon is
# the one its service manager started, whose parent is PID 1: that one wins,
# the lowest PID among them if several. Only when no candidate is a child of
# PID 1 (a wrapper that did not exec) does the lowest PID win. It reads
# ${P:-/proc}: a probe that tests under a fake root sets P.
pidof_comm() {
	best=none
	top=none
	for d in "${P:-/proc}"/[0-9]*; do
		c=
		read -r c 2>/dev/null <"$d/comm" || continue
		[ "$c" = "$1" ] || continue
		p=${d##*/}
		if [ "$best" = none ] || [ "$p" -lt "$best" ]; then best=$p; fi
		# stat is "PID (COMM) STATE PPID ...": the parent is the second
		# field after the last ") ", since a comm may hold ") " itself.
		st=
		read -r st 2>/dev/null <"$d/stat" || continue
		st=${st##*) }
		pp=${st#* }
		pp=${pp%% *}
		if [ "$pp" = 1 ] && { [ "$top" = none ] || [ "$p" -lt "$top" ]; }; then top=$p; fi
	done
	if [ "$top" != none ]; then echo "$top"; else echo "$best"; fi
}
