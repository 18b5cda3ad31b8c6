package mcp

import (
	"reflect"
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var kubensOn = map[string]bool{"kubens.service": true}

func TestReach(t *testing.T) {
	std := []mcfgv1.MachineConfigPool{pool("master", "master"), pool("worker", "worker")}
	withInfra := append(append([]mcfgv1.MachineConfigPool{}, std...), pool("infra", "worker", "infra"))
	emptySel := pool("broken")
	emptySel.Spec.MachineConfigSelector = &metav1.LabelSelector{}
	tests := []struct {
		name    string
		pools   []mcfgv1.MachineConfigPool
		mcs     []mcfgv1.MachineConfig
		want    map[string][]string
		wantErr string
	}{
		{
			name:  "master and worker",
			pools: std,
			mcs:   []mcfgv1.MachineConfig{mc("99-kubens-master", "master", kubensOn), mc("99-kubens-worker", "worker", kubensOn)},
			want:  map[string][]string{"master": {"99-kubens-master"}, "worker": {"99-kubens-worker"}},
		},
		{
			name:  "custom infra pool takes the worker MC too",
			pools: withInfra,
			mcs:   []mcfgv1.MachineConfig{mc("99-kubens-worker", "worker", kubensOn)},
			want:  map[string][]string{"infra": {"99-kubens-worker"}, "worker": {"99-kubens-worker"}},
		},
		{
			name:  "infra role reaches only infra",
			pools: withInfra,
			mcs:   []mcfgv1.MachineConfig{mc("99-kubens-infra", "infra", kubensOn)},
			want:  map[string][]string{"infra": {"99-kubens-infra"}},
		},
		{
			name:  "an empty selector selects nothing",
			pools: append(append([]mcfgv1.MachineConfigPool{}, std...), emptySel),
			mcs:   []mcfgv1.MachineConfig{mc("99-kubens-worker", "worker", kubensOn)},
			want:  map[string][]string{"worker": {"99-kubens-worker"}},
		},
		{
			name:    "a role no pool selects is an error with a hint",
			pools:   std,
			mcs:     []mcfgv1.MachineConfig{mc("99-kubens-arbiter", "arbiter", kubensOn)},
			wantErr: `no MachineConfigPool selects MachineConfig 99-kubens-arbiter (role "arbiter"); pools on this cluster: master, worker`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Reach(tt.pools, ptrs(tt.mcs...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPoolForNode(t *testing.T) {
	pools := []mcfgv1.MachineConfigPool{pool("master", "master"), pool("worker", "worker"), pool("infra", "worker", "infra"), pool("gpu", "worker", "gpu")}
	tests := []struct {
		name    string
		roles   []string
		want    string
		wantErr string
	}{
		{"worker", []string{"worker"}, "worker", ""},
		{"master wins", []string{"master", "worker"}, "master", ""},
		{"custom wins over worker", []string{"worker", "infra"}, "infra", ""},
		{"no pool", []string{"edge"}, "", ""},
		{"two custom pools", []string{"worker", "infra", "gpu"}, "", "more than one custom pool (gpu, infra)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := node("n1", tt.roles, "", "", "", "")
			got, err := PoolForNode(pools, &n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMaxUnavailable(t *testing.T) {
	tests := []struct {
		name     string
		opt      poolOpt
		machines int
		want     int
	}{
		{"default", func(*mcfgv1.MachineConfigPool) {}, 5, 1},
		{"int", withMaxUnavailable(intstr.FromInt32(2)), 5, 2},
		{"percent rounds down", withMaxUnavailable(intstr.FromString("50%")), 3, 1},
		{"zero percent is still one", withMaxUnavailable(intstr.FromString("0%")), 3, 1},
		{"hundred percent", withMaxUnavailable(intstr.FromString("100%")), 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mkPool("worker", []string{"worker"}, tt.opt)
			if got := MaxUnavailable(&p, tt.machines); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestIsRendered(t *testing.T) {
	r := rendered("rendered-worker-abc", "worker", nil)
	in := mc("99-kubens-worker", "worker", nil)
	if !IsRendered(&r) || IsRendered(&in) {
		t.Fatal("IsRendered misclassifies")
	}
	_ = corev1.Node{}
}
