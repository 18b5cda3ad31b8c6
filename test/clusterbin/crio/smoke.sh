#!/usr/bin/env bash
# Smoke test of the CRI-O build (make crio-smoke; root): checks that
#   - crio says version 1.34.0 and --help works;
#   - pinns pins UTS, IPC and network namespaces on files;
#   - crio joins the mount namespace named by KUBENSMNT (the kubensmnt C
#     constructor), serves its CRI socket, and stops cleanly on SIGINT.
# Everything runs in a throw-away private mount namespace with tmpfs over
# /run, /var/lib and /var/log, and every path crio writes is pointed at a
# temporary folder, so the host is left as it was. Nothing here is part of
# `make test`.
#
#   smoke.sh BIN_DIR      BIN_DIR holds crio and pinns
set -euo pipefail

bin=${1:?usage: smoke.sh BIN_DIR}
bin=$(cd "$bin" && pwd)

if [ "${CRIO_SMOKE_INNER:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "crio-smoke: needs root" >&2; exit 1; }
  t=$(mktemp -d /tmp/crio-smoke.XXXXXX)
  # On these VMs, pinning a mount namespace on a file fails at random with
  # EINVAL unless both namespaces were created on the same CPU (HARNESS.md).
  rc=0
  CRIO_SMOKE_INNER=1 CRIO_SMOKE_DIR=$t taskset -c 0 unshare --mount --propagation private "$0" "$bin" || rc=$?
  rmdir "$t"
  exit $rc
fi

t=$CRIO_SMOKE_DIR
fail() { echo "crio-smoke: FAIL: $*" >&2; exit 1; }

mount -t tmpfs tmpfs "$t"
for d in /run /var/lib /var/log; do mount -t tmpfs tmpfs "$d"; done

echo "== crio version, crio --help"
"$bin/crio" version 2>/dev/null | grep -Eq '^Version:[[:space:]]+1\.34\.0$' || fail "crio version is not 1.34.0"
"$bin/crio" --help >/dev/null 2>&1 || fail "crio --help"

echo "== pinns pins uts, ipc and net namespaces"
mkdir -p "$t/ns"
"$bin/pinns" -d "$t/ns" -f smoke -u -i -n || fail "pinns exited $?"
for n in utsns ipcns netns; do
  [ "$(findmnt -n -o FSTYPE "$t/ns/$n/smoke")" = nsfs ] || fail "pinns did not pin $n"
done

echo "== a pinned mount namespace, as kubens.service makes it"
mkdir -p "$t/kubens"
mount --bind "$t/kubens" "$t/kubens"
mount --make-private "$t/kubens"
touch "$t/kubens/mnt"
unshare --mount="$t/kubens/mnt" --propagation slave true

echo "== crio with KUBENSMNT, all state under $t"
mkdir -p "$t/conf.d" "$t/hooks" "$t/cni"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$t/policy.json"
printf '[crio.image]\nsignature_policy_dir = "%s/policies"\n' "$t" >"$t/crio.conf"
start=$(date +%s.%N)
KUBENSMNT=$t/kubens/mnt "$bin/crio" --config "$t/crio.conf" --config-dir "$t/conf.d" \
  --root "$t/root" --runroot "$t/runroot" --storage-driver vfs --listen "$t/crio.sock" --log-dir "$t/log" \
  --version-file "$t/version" --version-file-persist "$t/version-persist" --clean-shutdown-file "$t/clean" \
  --namespaces-dir "$t/pinned" --pinns-path "$bin/pinns" --conmon /usr/bin/conmon --cgroup-manager cgroupfs \
  --default-runtime runc --runtimes "runc:/usr/sbin/runc:$t/runc-root" \
  --signature-policy "$t/policy.json" --hooks-dir "$t/hooks" --cni-config-dir "$t/cni" --cni-plugin-dir /usr/lib/cni \
  >"$t/crio.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -S "$t/crio.sock" ] && break
  kill -0 $pid 2>/dev/null || { cat "$t/crio.log" >&2; fail "crio exited before serving"; }
  sleep 0.1
done
[ -S "$t/crio.sock" ] || { kill -9 $pid; fail "no socket after 10 s"; }
ready=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
crio_ns=$(readlink /proc/$pid/ns/mnt)
kubens_ns=$(nsenter --mount="$t/kubens/mnt" readlink /proc/self/ns/mnt)
rss=$(awk '/^VmRSS/ {print $2 " " $3}' /proc/$pid/status)
kill -INT $pid
wait $pid || fail "crio exited $? on SIGINT"
grep -q "Joined mount namespace" "$t/crio.log" || fail "crio did not log joining KUBENSMNT"
[ "$crio_ns" = "$kubens_ns" ] || fail "crio's mount namespace $crio_ns is not KUBENSMNT's $kubens_ns"
[ "$crio_ns" != "$(readlink /proc/self/ns/mnt)" ] || fail "crio stayed in the starting namespace"
echo "crio served its socket after ${ready}s in mount namespace $crio_ns (KUBENSMNT's), RSS $rss; stopped on SIGINT"
umount -R "$t"
echo "crio-smoke: ok"
