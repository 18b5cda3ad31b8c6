# oc-kubens measure probe, report format v1.
#
# This text is fixed: nothing from the user or the cluster is spliced into it;
# its only argument is the window in whole seconds (1 to 3600). It runs as
# root in a privileged hostPID pod with the node's / at /host and measures,
# over the window, what mount namespace encapsulation is meant to change:
# PID 1's CPU time, the mounts PID 1 and kubelet see, how often PID 1's mount
# table changes, the mount units systemd tracks and the node's pod count. It
# writes a small key=value report to /dev/termination-log (the kubelet keeps
# at most 4096 bytes) and to stdout, and exits 0 once the report is written:
# the client decides what the numbers mean. A fact it cannot read is
# "unknown", never a guess.
#
# It needs POSIX sh plus sleep, sort and comm (all busybox applets), taken
# from the image when present, else from the host through chroot /host;
# getconf and systemctl come from the host only, where they belong.
#
# KUBENS_MEASURE_ROOT is for tests only: it moves /proc, /host, /tmp and
# /dev/termination-log under a fake root. The pod never sets it.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
R=${KUBENS_MEASURE_ROOT:-}
P=$R/proc
H=$R/host

# The window is checked here rather than trusted: a bad one is a client bug,
# and measuring something else than asked would hide it.
case ${1:-} in
'' | 0* | *[!0-9]* | ?????*)
	echo "usage: sh -c SCRIPT NAME WINDOW-SECONDS (1 to 3600)" >&2
	exit 2
	;;
esac
win=$1
if [ "$win" -gt 3600 ]; then
	echo "usage: sh -c SCRIPT NAME WINDOW-SECONDS (1 to 3600)" >&2
	exit 2
fi

# host runs a tool of the node's own, through chroot /host.
# SYSTEMD_IGNORE_CHROOT keeps systemctl talking to the manager from there.
host() {
	command -v chroot >/dev/null 2>&1 || return 127
	[ -x "$H/usr/bin/$1" ] || [ -x "$H/bin/$1" ] || return 127
	SYSTEMD_IGNORE_CHROOT=1 chroot "$H" "$@"
}

# tool runs a tool from the image, or from the host when the image lacks it.
tool() {
	if command -v "$1" >/dev/null 2>&1; then "$@"; else host "$@"; fi
}

# lines sets n to the number of lines in file $1; it fails when the file
# cannot be read (n is then meaningless).
lines() {
	n=0
	ok=
	{ while IFS= read -r _l || [ -n "$_l" ]; do
		n=$((n + 1))
	done && ok=1; } 2>/dev/null <"$1"
	[ -n "$ok" ]
}

# count prints the number of lines in file $1, or "unknown".
count() {
	if lines "$1"; then echo "$n"; else echo unknown; fi
}

# @include pidof_comm (internal/shlib: one definition for every probe)

# ticks prints utime+stime of PID 1 (fields 14 and 15 of /proc/1/stat, in
# clock ticks), or "unknown".
ticks() {
	st=
	# A line without its newline still counts.
	read -r st 2>/dev/null <"$P/1/stat" || [ -n "$st" ] || { echo unknown; return; }
	case $st in *") "*) ;; *) echo unknown; return ;; esac
	# After the last ") " field 3 (state) comes first, so fields 14 and
	# 15 are the 12th and 13th.
	set -f
	set -- ${st##*) }
	set +f
	[ $# -ge 13 ] || { echo unknown; return; }
	shift 11
	case $1$2 in '' | *[!0-9]*) echo unknown; return ;; esac
	case $1 in ?????????????????*) echo unknown; return ;; esac
	case $2 in ?????????????????*) echo unknown; return ;; esac
	echo $(($1 + $2))
}

# uptime prints the node's uptime in hundredths of a second, or "unknown".
# The kernel writes it as SECONDS.HH.
uptime_cs() {
	u=
	read -r u _ 2>/dev/null <"$P/uptime" || { echo unknown; return; }
	case $u in *.*) ;; *) echo unknown; return ;; esac
	s=${u%.*}
	f=${u#*.}
	case $s in '' | *[!0-9]* | ?????????????*) echo unknown; return ;; esac
	case $f in [0-9][0-9]) ;; *) echo unknown; return ;; esac
	# No leading zeros into $(( )): they would read as octal.
	s=${s#"${s%%[!0]*}"}
	f=${f#0}
	echo $((${s:-0} * 100 + f))
}

# snap writes PID 1's mount table, sorted, to file $1 under the work folder.
snap() {
	[ -r "$P/1/mountinfo" ] || return 1
	tool sort <"$P/1/mountinfo" >"$W/$1" 2>/dev/null
}

# nap waits about 200 ms; a sleep without fractions makes it a second, and
# the report's sample count shows it.
nap() {
	sleep 0.2 2>/dev/null || sleep 1
}

pid1comm=unknown
c=
if read -r c 2>/dev/null <"$P/1/comm"; then
	case $c in '' | *[!A-Za-z0-9._:-]* | ?????????????????????????????????*) ;; *) pid1comm=$c ;; esac
fi

clk=$(host getconf CLK_TCK 2>/dev/null)
clksrc=node
case $clk in
'' | 0* | *[!0-9]* | ???????*) clk=100 clksrc=default ;;
esac

kpid=$(pidof_comm kubelet)
kmi=$P/$kpid/mountinfo
[ "$kpid" = none ] && kmi=$R/nonexistent

p1start=$(count "$P/1/mountinfo")
kstart=$(count "$kmi")
# Uptime and ticks are read back to back, in the same order at both ends,
# so the time between the two reads cancels out.
u0=$(uptime_cs)
t0=$(ticks)

# The work folder holds the snapshots of PID 1's mount table; without it
# there is no churn, but the rest is still measured. The first snapshot is
# taken after the start values, so the window's changes all fall after both
# (and a test can wait for it before it changes its fake node).
W=$R/tmp/kubens-measure.$$
changes=unknown
samples=unknown
if mkdir "$W" 2>/dev/null; then
	trap 'rm -rf "$W"' EXIT
	if snap a; then
		changes=0
		samples=1
	fi
fi

# Sample until the window has passed by the node's clock; without a clock,
# count naps. The cap bounds the loop if the clock stands still.
naps=0
cap=$((win * 50))
while :; do
	nap
	naps=$((naps + 1))
	if [ "$samples" != unknown ]; then
		if snap b && tool sort "$W/a" "$W/b" 2>/dev/null | tool uniq -u >"$W/d" 2>/dev/null && lines "$W/d"; then
			# The lines only one snapshot has (every mountinfo line is
			# unique: it starts with the mount's ID): each mount added
			# and each removed is one change. Not comm: busybox images
			# often lack it, and the host's cannot read this container's
			# /tmp.
			changes=$((changes + n))
			samples=$((samples + 1))
			mv -f "$W/b" "$W/a"
		else
			changes=unknown
			samples=unknown
		fi
	fi
	[ "$naps" -ge "$cap" ] && break
	now=$(uptime_cs)
	if [ "$u0" = unknown ] || [ "$now" = unknown ]; then
		[ "$naps" -ge $((win * 5)) ] && break
	elif [ $((now - u0)) -ge $((win * 100)) ]; then
		break
	fi
done

u1=$(uptime_cs)
t1=$(ticks)
elapsed=unknown
if [ "$u0" != unknown ] && [ "$u1" != unknown ] && [ "$u1" -ge "$u0" ]; then
	elapsed=$(((u1 - u0) * 10))
fi
p1end=$(count "$P/1/mountinfo")
kend=$(count "$kmi")

# Listing units is a D-Bus call PID 1 answers: it is made after the window,
# so it does not count in the CPU time measured.
units=unknown
if [ "$pid1comm" = systemd ] && [ -d "$W" ] &&
	host systemctl list-units --type=mount --all --no-legend --plain >"$W/u" 2>/dev/null &&
	lines "$W/u"; then
	units=$n
fi

# The pods kubelet keeps state for, as kubelet sees them: through its root,
# which is its own mount namespace's view.
pods=unknown
pd=$P/$kpid/root/var/lib/kubelet/pods
if [ "$kpid" != none ] && [ -d "$pd" ] && [ -r "$pd" ] && [ -x "$pd" ]; then
	pods=0
	for e in "$pd"/*; do
		[ -d "$e" ] && pods=$((pods + 1))
	done
fi

O="kubens-measure v1
window=$win
pid1.comm=$pid1comm
pid1.ticks.start=$t0
pid1.ticks.end=$t1
elapsed.ms=$elapsed
clk.tck=$clk
clk.source=$clksrc
pid1.mounts.start=$p1start
pid1.mounts.end=$p1end
kubelet.pid=$kpid
kubelet.mounts.start=$kstart
kubelet.mounts.end=$kend
mount.units=$units
churn.changes=$changes
churn.samples=$samples
pods=$pods
end
"
if [ -e "$R/dev/termination-log" ]; then
	{ printf '%s' "$O" >"$R/dev/termination-log"; } 2>/dev/null
fi
printf '%s' "$O"
exit 0
