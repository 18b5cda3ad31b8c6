# oc-kubens verify probe, report format v1.
#
# This text is fixed: nothing from the user or the cluster is ever spliced into
# it. Its positional parameters name the units this node's config wraps with
# kubensenter (sh -c SCRIPT oc-kubens-verify UNIT...), checked again here
# before use. It runs as root in a privileged hostPID pod with the node's / at /host,
# inspects the mount namespaces of PID 1, kubelet and the container runtime,
# and writes a small key=value report to /dev/termination-log (the kubelet
# keeps at most 4096 bytes of it) and to stdout. It always exits 0 once the
# report is written: the client decides what the facts mean.
#
# It needs only POSIX sh builtins plus readlink, stat and tr, taken from the
# image when present, else from the host through chroot /host, so both a bare
# static busybox and the OpenShift support-tools image work.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
H=/host

# t runs a tool from the image, or from the host when the image lacks it.
t() {
	if command -v "$1" >/dev/null 2>&1; then
		"$@"
	elif command -v chroot >/dev/null 2>&1 && { [ -x "$H/usr/bin/$1" ] || [ -x "$H/bin/$1" ]; }; then
		chroot "$H" "$@"
	else
		return 127
	fi
}

# @include pidof_comm (internal/shlib: one definition for every probe)

# mntns prints the mount namespace inode of PID $1: digits, "none" when the
# process is missing, "denied" when it exists but cannot be read.
mntns() {
	[ "$1" = none ] && { echo none; return; }
	l=$(t readlink "/proc/$1/ns/mnt" 2>/dev/null)
	case $l in
	mnt:\[*\])
		l=${l#mnt:\[}
		l=${l%\]}
		case $l in '' | *[!0-9]*) echo denied ;; *) echo "$l" ;; esac
		;;
	*) if [ -d "/proc/$1" ]; then echo denied; else echo none; fi ;;
	esac
}

# pin prints the inode of the namespace pinned at path $1 as PID 1 (the
# host's own mount namespace) sees it. The pin is an nsfs bind mount that only
# exists in the namespace that made it; inside the pinned namespace the path
# is a plain empty file, so it is read through /proc/1/root, and it counts
# only when it lives on the same nsfs device as our own namespace link.
pin() {
	[ -d /proc/1/root/ ] || { echo denied; return; }
	f=/proc/1/root$1
	[ -e "$f" ] || { echo none; return; }
	s=$(t stat -L -c '%d %i' "$f" 2>/dev/null) || { echo denied; return; }
	set -- $s
	if [ -n "$nsdev" ] && [ "${1:-}" = "$nsdev" ]; then
		case ${2:-} in '' | *[!0-9]*) echo denied ;; *) echo "$2" ;; esac
	else
		echo none
	fi
}

# hasenv says whether PID $1 has KUBENSMNT in its environment.
hasenv() {
	[ "$1" = none ] && { echo unknown; return; }
	e=$(t tr '\000' '\n' 2>/dev/null <"/proc/$1/environ") || { echo unknown; return; }
	case "
$e
" in
	*"
KUBENSMNT="*) echo yes ;;
	*) echo no ;;
	esac
}

# sysctl_ok says whether the node's systemd can be asked through the host's
# systemctl: PID 1 is systemd, and chroot and the host's systemctl exist.
sysctl_ok() {
	[ "$pid1comm" = systemd ] && command -v chroot >/dev/null 2>&1 &&
		{ [ -x "$H/usr/bin/systemctl" ] || [ -x "$H/bin/systemctl" ]; }
}

# unit prints systemctl's answer ($2 = is-enabled | is-active) for unit $1,
# or "unknown" when the node's PID 1 is not systemd or the host has no
# systemctl. SYSTEMD_IGNORE_CHROOT keeps systemctl from refusing to talk to
# the manager from inside chroot /host.
unit() {
	if ! sysctl_ok; then
		echo unknown
		return
	fi
	v=$(SYSTEMD_IGNORE_CHROOT=1 chroot "$H" systemctl "$2" "$1" 2>/dev/null)
	v=${v%%
*}
	case $v in '' | *[!a-z-]*) echo unknown ;; *) if [ ${#v} -le 32 ]; then echo "$v"; else echo unknown; fi ;; esac
}

# mainpid prints the main PID of service $1 as systemd knows it, or "none":
# not running (systemd says 0), no answer, or systemd cannot be asked. "--"
# keeps a name from being read as an option.
mainpid() {
	sysctl_ok || { echo none; return; }
	v=$(SYSTEMD_IGNORE_CHROOT=1 chroot "$H" systemctl show -p MainPID --value -- "$1" 2>/dev/null)
	v=${v%%
*}
	case $v in '' | 0* | *[!0-9]*) echo none ;; *) if [ ${#v} -le 9 ]; then echo "$v"; else echo none; fi ;; esac
}

# servicepid prints the process that does a service's work, given its main
# PID $1: that PID, or, when it is kubensenter, its child. kubensenter is a
# bash script that runs nsenter as a child instead of exec'ing it, so a
# wrapped service's main PID stays in the host namespace while the child
# (nsenter, which execs the command once it has joined the namespace) is
# the service itself. The lowest PID among its children, if several.
servicepid() {
	[ "$1" = none ] && { echo none; return; }
	c=
	read -r c 2>/dev/null <"/proc/$1/comm"
	[ "$c" = kubensenter ] || { echo "$1"; return; }
	best=none
	for d in /proc/[0-9]*; do
		st=
		read -r st 2>/dev/null <"$d/stat" || continue
		st=${st##*) }
		pp=${st#* }
		pp=${pp%% *}
		[ "$pp" = "$1" ] || continue
		q=${d#/proc/}
		if [ "$best" = none ] || [ "$q" -lt "$best" ]; then best=$q; fi
	done
	if [ "$best" = none ]; then echo "$1"; else echo "$best"; fi
}

# wrapped prints, for the i-th unit named in its arguments (0-based, at most
# 32), wrap.<i>.pid (its service process, see servicepid, or none) and wrap.<i>.mnt (that process's
# mount namespace). The client checked the names, and each is checked again
# here since it goes on a command line: a service name of at most 255
# characters from [A-Za-z0-9:_.@-]. A name that fails is reported as not
# running and never reaches systemctl.
wrapped() {
	i=0
	for u in "$@"; do
		[ "$i" -lt 32 ] || break
		p=none
		case $u in
		.service | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.@-]*) ;;
		*.service) if [ ${#u} -le 255 ]; then p=$(servicepid "$(mainpid "$u")"); fi ;;
		esac
		printf 'wrap.%d.pid=%s\nwrap.%d.mnt=%s\n' "$i" "$p" "$i" "$(mntns "$p")"
		i=$((i + 1))
	done
}

# mounts sets n (number of mounts in /proc/$1/mountinfo) and nm (whether
# /run/netns is a mount point there).
mounts() {
	n=unknown
	nm=unknown
	[ "$1" = none ] && return
	c=0
	m=no
	# The loop's own status is that of its last test, so success is
	# recorded explicitly: ok stays empty when the file cannot be opened.
	ok=
	{ while IFS=' ' read -r _ _ _ _ mp _; do
		c=$((c + 1))
		if [ "$mp" = /run/netns ]; then m=yes; fi
	done && ok=1; } 2>/dev/null <"/proc/$1/mountinfo"
	[ -n "$ok" ] || return
	n=$c
	nm=$m
}

pid1comm=
read -r pid1comm 2>/dev/null </proc/1/comm
nsdev=$(t stat -L -c %d /proc/self/ns/mnt 2>/dev/null)
case $nsdev in *[!0-9]*) nsdev= ;; esac

kpid=$(pidof_comm kubelet)
rt=crio
rpid=$(pidof_comm crio)
if [ "$rpid" = none ]; then
	rt=containerd
	rpid=$(pidof_comm containerd)
	[ "$rpid" = none ] && rt=none
fi

mounts 1
p1n=$n
mounts "$kpid"
kn=$n
knm=$nm

W=$(wrapped "$@")
if [ -n "$W" ]; then
	W="$W
"
fi

R="kubens-probe v1
pid1.mnt=$(mntns 1)
kubelet.pid=$kpid
kubelet.mnt=$(mntns "$kpid")
runtime.name=$rt
runtime.pid=$rpid
runtime.mnt=$(mntns "$rpid")
pin.kubens=$(pin /run/kubens/mnt)
pin.ztp=$(pin /run/container-mount-namespace/mnt)
kubelet.kubensmnt=$(hasenv "$kpid")
runtime.kubensmnt=$(hasenv "$rpid")
unit.kubens.enabled=$(unit kubens.service is-enabled)
unit.kubens.active=$(unit kubens.service is-active)
unit.ztp.enabled=$(unit container-mount-namespace.service is-enabled)
unit.ztp.active=$(unit container-mount-namespace.service is-active)
netns.mountpoint=$knm
pid1.mounts=$p1n
kubelet.mounts=$kn
${W}end
"
if [ -e /dev/termination-log ]; then
	{ printf '%s' "$R" >/dev/termination-log; } 2>/dev/null
fi
printf '%s' "$R"
exit 0
