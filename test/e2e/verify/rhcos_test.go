package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	mcfgclient "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	vfy "github.com/oc-kubens/oc-kubens/pkg/verify"
	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// The telco ZTP mechanism in the shape real clusters carry it (the
// container-mount-namespace MachineConfig of the ZTP site configs; our own
// text): a unit that pins /run/container-mount-namespace/mnt, and drop-ins
// that re-run kubelet's and CRI-O's first ExecStart (continuation lines
// included) under nsenter into it.
const ztpExtractExecStart = `#!/bin/bash
# Write the first ExecStart= of UNIT's main file, continuation lines joined,
# to ENVFILE as VAR=..., for a drop-in to run it in another mount namespace.
set -eu
unit=$1 envfile=$2 var=${3:-EXECSTART}
main=$(systemctl cat "$unit" | sed -n '1s/^# //p')
cmd=$(awk '/^ExecStart=/ && !done { on = 1; sub(/^ExecStart=/, "") }
  on { line = $0; cont = sub(/\\$/, "", line); printf "%s ", line; if (!cont) { on = 0; done = 1 } }' "$main")
printf '%s=%s\n' "$var" "$cmd" > "$envfile"
`

const ztpUnit = `[Unit]
Description=Manages a mount namespace that both kubelet and crio can use to share their container-specific mounts

[Service]
Type=oneshot
RemainAfterExit=yes
RuntimeDirectory=container-mount-namespace
Environment=RUNTIME_DIRECTORY=%t/container-mount-namespace
Environment=BIND_POINT=%t/container-mount-namespace/mnt
ExecStartPre=bash -c "findmnt ${RUNTIME_DIRECTORY} || mount --make-unbindable --bind ${RUNTIME_DIRECTORY} ${RUNTIME_DIRECTORY}"
ExecStartPre=touch ${BIND_POINT}
ExecStart=unshare --mount=${BIND_POINT} --propagation slave mount --make-rshared /
ExecStop=umount -R ${RUNTIME_DIRECTORY}

[Install]
WantedBy=multi-user.target
`

const ztpDropin = `[Unit]
Wants=container-mount-namespace.service
After=container-mount-namespace.service

[Service]
ExecStartPre=/usr/local/bin/extractExecStart %n /%t/%N-execstart.env ORIG_EXECSTART
EnvironmentFile=-/%t/%N-execstart.env
ExecStart=
ExecStart=bash -c "nsenter --mount=%t/container-mount-namespace/mnt \
    ${ORIG_EXECSTART}"
`

// crioOutsideKubens is a drop-in that a careless config might carry: it
// resets CRI-O's environment files, 01-kubens.conf's /run/kubens/env among
// them, so CRI-O never learns KUBENSMNT and stays in the host namespace
// while kubelet (through kubensenter) joins kubens: a Split node.
const crioOutsideKubens = `[Service]
EnvironmentFile=
`

func machineConfig(name, role string, cfg map[string]any) *mcfgv1.MachineConfig {
	raw, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{mcosim.RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: raw}},
	}
}

func dataURL(s string) string {
	return "data:text/plain;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte(s))
}

func ztpConfig() *mcfgv1.MachineConfig {
	dropin := []map[string]string{{"name": "90-container-mount-namespace.conf", "contents": ztpDropin}}
	return machineConfig("container-mount-namespace-and-kubelet-conf-worker", "worker", map[string]any{
		"ignition": map[string]string{"version": "3.2.0"},
		"storage": map[string]any{"files": []map[string]any{{
			"path": "/usr/local/bin/extractExecStart", "mode": 0o755, "overwrite": true,
			"contents": map[string]string{"source": dataURL(ztpExtractExecStart)},
		}}},
		"systemd": map[string]any{"units": []map[string]any{
			{"name": "container-mount-namespace.service", "enabled": true, "contents": ztpUnit},
			{"name": "crio.service", "dropins": dropin},
			{"name": "kubelet.service", "dropins": dropin},
		}},
	})
}

func splitConfig() *mcfgv1.MachineConfig {
	return machineConfig("99-worker-kubens-crio-outside", "worker", map[string]any{
		"ignition": map[string]string{"version": "3.4.0"},
		"systemd": map[string]any{"units": []map[string]any{
			{"name": "kubens.service", "enabled": true},
			{"name": "crio.service", "dropins": []map[string]string{{"name": "99-crio-outside-kubens.conf", "contents": crioOutsideKubens}}},
		}},
	})
}

// TestVerifyOnRHCOSNodes: on RHCOS-like nodes the state follows from the
// MachineConfigs alone. The simulated MCD writes each rendered config into
// the workers and reboots them: the ZTP container-mount-namespace config
// makes them Encapsulated by that mechanism, a config that enables
// kubens.service but keeps CRI-O's KUBENSMNT away makes them Split, and
// removing each brings them back to NotEncapsulated. The runtime is CRI-O
// throughout; the master, untouched, stays NotEncapsulated.
func TestVerifyOnRHCOSNodes(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{RenderDelay: time.Second, StepDelay: 100 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mco.Stop)
	mcfg := mcfgclient.NewForConfigOrDie(c.RESTConfig())
	rollout := func(what string) {
		t.Helper()
		start := time.Now()
		if r := run(t, c, "wait", "--timeout", "5m"); r.code != 0 {
			t.Fatalf("wait after %s: %s", what, r)
		}
		t.Logf("%s rolled out in %s", what, time.Since(start).Round(time.Second))
	}
	check := func(want map[string]vfy.State, mechanism vfy.Mechanism, expected vfy.State) map[string]vfy.NodeResult {
		t.Helper()
		rep, _ := verifyJSON(t, c, "--all-nodes")
		wantStates(t, c, rep, want)
		got := byNode(rep)
		for short := range want {
			n := got[c.NodeName(short)]
			if n.Runtime != "crio" {
				t.Errorf("%s: runtime %q, want crio", short, n.Runtime)
			}
			if short != "master-0" && (n.Mechanism != mechanism || n.Expected != expected) {
				t.Errorf("%s: mechanism %q expected %q, want %q and %q", short, n.Mechanism, n.Expected, mechanism, expected)
			}
		}
		noLeftovers(t, c.Client, 30*time.Second)
		return got
	}
	plain := map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-0": vfy.NotEncapsulated, "worker-1": vfy.NotEncapsulated}
	check(plain, vfy.MechanismNone, vfy.NotEncapsulated)

	t.Run("ZTP container-mount-namespace", func(t *testing.T) {
		if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, ztpConfig(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rollout("the ZTP config")
		got := check(map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-0": vfy.Encapsulated, "worker-1": vfy.Encapsulated},
			vfy.MechanismZTP, vfy.Encapsulated)
		for _, short := range []string{"worker-0", "worker-1"} {
			n := got[c.NodeName(short)]
			if f := n.FailedChecks(); len(f) != 0 {
				t.Errorf("%s: failed checks %v on a ZTP node", short, f)
			}
		}
		if err := mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, ztpConfig().Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		rollout("removing the ZTP config")
		check(plain, vfy.MechanismNone, vfy.NotEncapsulated)
	})

	t.Run("kubens on, CRI-O kept outside: Split", func(t *testing.T) {
		if _, err := mcfg.MachineconfigurationV1().MachineConfigs().Create(ctx, splitConfig(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rollout("the split-making config")
		rep, r := verifyJSON(t, c, "--all-nodes")
		if r.code != 1 {
			t.Errorf("verify exit %d, want 1 (split workers)", r.code)
		}
		wantStates(t, c, rep, map[string]vfy.State{"master-0": vfy.NotEncapsulated, "worker-0": vfy.Split, "worker-1": vfy.Split})
		for _, short := range []string{"worker-0", "worker-1"} {
			if n := byNode(rep)[c.NodeName(short)]; n.Expected != vfy.Encapsulated || n.Runtime != "crio" {
				t.Errorf("%s: expected %q runtime %q, want Encapsulated (kubens.service is enabled) and crio", short, n.Expected, n.Runtime)
			}
		}
		noLeftovers(t, c.Client, 30*time.Second)
		if err := mcfg.MachineconfigurationV1().MachineConfigs().Delete(ctx, splitConfig().Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		rollout("removing the split-making config")
		check(plain, vfy.MechanismNone, vfy.NotEncapsulated)
	})
}
