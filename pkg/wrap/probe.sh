# oc-kubens wrap probe: reads systemd units, report format kubens-unitcat v1.
#
# This text is fixed: nothing from the user or the cluster is spliced into
# it. Its arguments are the names of the services to read; each is checked
# here again and is only ever used double-quoted, after "--". It runs as
# root in a privileged hostPID pod with the node's / at /host, asks the
# node's systemd about each unit with `systemctl cat`, and writes a
# line-oriented report to /dev/termination-log and to stdout; it exits 0
# once the report is written. Text from the node (the unit files, an error
# of systemctl) only ever appears after "| ", so it cannot pass for the
# report's structure.
#
# The kubelet keeps the last 4096 bytes of a termination message, and all
# the units share them, so only the lines that decide a unit's ExecStart and
# User are kept: file headers, section headers, and in [Service] the
# ExecStart= and User= lines with their continuation lines, plus an empty
# line where one ends a kept continuation or comes before a file header.
# The client reads what is kept exactly as it would read the whole output
# (wrap.ParseSystemctlCat). Room for every unit's status is set aside
# first; a unit whose lines do not fit in what is left is "truncated".
#
# It needs only POSIX sh builtins, chroot and the node's own systemctl.
#
# KUBENS_WRAP_ROOT is for tests only: it moves /proc, /host and
# /dev/termination-log under a fake root. The pod never sets it.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
R=${KUBENS_WRAP_ROOT:-}
H=$R/host
MAX=4096
CR=$(printf '\r')
WS=$(printf ' \t')
NL='
'

# host runs a tool of the node's own, through chroot /host.
# SYSTEMD_IGNORE_CHROOT keeps systemctl talking to the manager from there.
host() {
	command -v chroot >/dev/null 2>&1 || return 127
	[ -x "$H/usr/bin/$1" ] || [ -x "$H/bin/$1" ] || return 127
	SYSTEMD_IGNORE_CHROOT=1 chroot "$H" "$@"
}

# valid says whether $1 is a name the client may send (wrap.ValidateUnitName):
# at most 255 characters from [A-Za-z0-9:_.@-], ending in .service, not
# starting with a dot or an @. Anything else is never used.
valid() {
	case $1 in
	'' | .* | @* | *[!A-Za-z0-9:_.@-]*) return 1 ;;
	?*.service) ;;
	*) return 1 ;;
	esac
	[ "${#1}" -le 255 ]
}

# odd says whether line $1 ends in an odd number of backslashes: systemd
# then goes on with the next line.
odd() {
	_o=$1
	_n=0
	while :; do
		case $_o in
		*\\) _o=${_o%?} _n=$((_n + 1)) ;;
		*) break ;;
		esac
	done
	[ $((_n % 2)) -eq 1 ]
}

# keep reads systemctl cat output and prints, each after "| ", the lines
# that matter. It reads as wrap.ParseSystemctlCat does: a file header is
# "# /PATH" (no blanks) as the first line or right after an empty one;
# comments are skipped, even within a continuation; a logical line
# (continuations included) is kept or dropped whole, and kept when in doubt.
# It returns 3 on a CR inside a line, a line end for systemd that this loop
# cannot split on.
keep() {
	_first=1 _blank= _cont= _svc=
	while IFS= read -r _l; do
		_l=${_l%"$CR"}
		case $_l in *"$CR"*) return 3 ;; esac
		case $_l in
		'# /'*)
			if [ -n "$_first$_blank" ]; then
				case ${_l#??} in
				*[$WS]*) ;;
				*)
					# _blank is 1 while the empty line before is unsent.
					if [ "$_blank" = 1 ]; then printf '| \n'; fi
					printf '| %s\n' "$_l"
					_first= _blank= _cont= _svc=
					continue
					;;
				esac
			fi
			;;
		esac
		_first=
		_t=${_l#"${_l%%[!$WS]*}"}
		case $_t in
		'#'* | ';'*)
			_blank=
			continue
			;;
		'')
			# A blank line ends a continuation; an empty one may come
			# before a file header.
			_b=
			if [ -z "$_l" ]; then _b=1; fi
			if [ "$_cont" = keep ]; then
				printf '| %s\n' "$_l"
				if [ -n "$_b" ]; then _b=2; fi
			fi
			_blank=$_b _cont=
			continue
			;;
		esac
		_blank=
		if [ -n "$_cont" ]; then
			if [ "$_cont" = keep ]; then printf '| %s\n' "$_l"; fi
			odd "$_l" || _cont=
			continue
		fi
		_k=
		case $_t in
		'['*)
			_k=keep
			_s=${_t%"${_t##*[!$WS]}"}
			# A header that goes on might still become [Service].
			if [ "$_s" = '[Service]' ] || odd "$_l"; then _svc=1; else _svc=; fi
			;;
		*=*)
			if [ -n "$_svc" ]; then
				_key=${_t%%=*}
				_key=${_key%"${_key##*[!$WS]}"}
				case $_key in ExecStart | User) _k=keep ;; esac
			fi
			;;
		*)
			# No "=" yet: what the line is may only show on the next.
			if odd "$_l"; then _k=keep _svc=1; fi
			;;
		esac
		if [ -n "$_k" ]; then printf '| %s\n' "$_l"; fi
		if odd "$_l"; then _cont=${_k:-drop}; fi
	done
	return 0
}

# raw prints every line after "| ", for the output keep cannot read.
raw() {
	while IFS= read -r _l; do
		printf '| %s\n' "$_l"
	done
}

# line1 prints the first line of $1, cut at a CR and at 200 bytes.
line1() {
	_e=${1%%"$NL"*}
	_e=${_e%%"$CR"*}
	printf '%.200s' "$_e"
}

can=
c=
read -r c 2>/dev/null <"$R/proc/1/comm"
if [ "$c" = systemd ] && command -v chroot >/dev/null 2>&1 &&
	{ [ -x "$H/usr/bin/systemctl" ] || [ -x "$H/bin/systemctl" ]; }; then
	can=1
fi

# Set aside the header, "end" and, for each unit, "unit NAME" and
# "status truncated" (the longest status): what is left is for the lines.
room=$((MAX - 18 - 4))
for u in "$@"; do
	if valid "$u"; then n=${#u}; else n=1; fi
	room=$((room - n - 23))
done

O="kubens-unitcat v1
"
for u in "$@"; do
	if ! valid "$u"; then
		O="${O}unit -
status invalid
"
		continue
	fi
	st=unknown
	body=
	if [ -n "$can" ]; then
		if out=$(host systemctl --no-pager cat -- "$u" 2>/dev/null); then
			st=ok
			body=$(printf '%s\n' "$out" | keep) || body=$(printf '%s\n' "$out" | raw)
		else
			# Asked again for its errors only: the answer decides
			# between a unit that is not there and a systemctl that
			# could not tell.
			err=$(host systemctl --no-pager cat -- "$u" 2>&1 >/dev/null)
			case $err in
			*'No files found'*) st=missing ;;
			*) st=failed body="| $(line1 "$err")" ;;
			esac
		fi
	fi
	if [ -n "$body" ]; then
		if [ $((${#body} + 1)) -le "$room" ]; then
			room=$((room - ${#body} - 1))
			body="$body$NL"
		else
			st=truncated
			body=
		fi
	fi
	O="${O}unit $u
status $st
$body"
done
O="${O}end
"
if [ -e "$R/dev/termination-log" ]; then
	{ printf '%s' "$O" >"$R/dev/termination-log"; } 2>/dev/null
fi
printf '%s' "$O"
exit 0
