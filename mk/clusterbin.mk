# Cluster binaries for the integration tests and the demo: kube-apiserver,
# kube-controller-manager, kubelet, kubectl (k8s.io/kubernetes) and etcd, each
# built from its own build module under test/clusterbin/ and cached by
# version under $(CACHE_DIR)/clusterbin/.
#
# A binary that is already there is never rebuilt: the version is part of the
# path, so bumping a version in test/clusterbin/*/go.mod must bump it here too.
# Each binary is linked to a temporary name and renamed into place, so a build
# killed half-way never leaves a truncated binary that a later run would skip.

K8S_VERSION  := v1.37.2
ETCD_VERSION := v3.6.16

K8S_BIN_DIR := $(CACHE_DIR)/clusterbin/k8s-$(K8S_VERSION)
ETCD_BIN    := $(CACHE_DIR)/clusterbin/etcd-$(ETCD_VERSION)/etcd

K8S_BINS := kube-apiserver kube-controller-manager kubelet kubectl
CLUSTER_BINS := $(addprefix $(K8S_BIN_DIR)/,$(K8S_BINS)) $(ETCD_BIN)

# The integration tests (test/harness/testenv) read these; they default to the
# same paths when unset.
export KUBENS_TEST_K8S_BIN_DIR := $(K8S_BIN_DIR)
export KUBENS_TEST_ETCD_BIN := $(ETCD_BIN)

# The Kubernetes binaries carry their release in their version variables the
# way the upstream build (hack/lib/version.sh) stamps them, so kubelets report
# v1.37.2 in node status and `kubectl version` shows it (unstamped they say
# v0.0.0-master+$$Format:%H$$). component-base/version is what kubelet, the
# apiserver and kubectl report; client-go/pkg/version is client-go's user agent.
# A cached binary built before this stamping is not rebuilt: rm it and rerun.
K8S_VERSION_PARTS := $(subst ., ,$(patsubst v%,%,$(K8S_VERSION)))
K8S_VERSION_LDFLAGS := $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(pkg).gitVersion=$(K8S_VERSION) \
  -X $(pkg).gitMajor=$(word 1,$(K8S_VERSION_PARTS)) \
  -X $(pkg).gitMinor=$(word 2,$(K8S_VERSION_PARTS)) \
  -X $(pkg).gitTreeState=clean)

CLUSTERBIN_GOFLAGS := -trimpath -ldflags='-s -w'
K8S_GOFLAGS := -trimpath -ldflags='-s -w $(strip $(K8S_VERSION_LDFLAGS))'

.PHONY: cluster-bins
## cluster-bins: build the Kubernetes and etcd binaries the local cluster runs (cached; a warm run does nothing)
cluster-bins: $(CLUSTER_BINS)

# No prerequisites on purpose: the cache is keyed by version, not by mtime.
$(K8S_BIN_DIR)/%:
	@mkdir -p $(@D)
	@echo "building $* $(K8S_VERSION) (cold: several minutes)"
	cd test/clusterbin/kube && $(GO) build $(K8S_GOFLAGS) -o $@.tmp.$$$$ k8s.io/kubernetes/cmd/$* && mv -f $@.tmp.$$$$ $@

$(ETCD_BIN):
	@mkdir -p $(@D)
	@echo "building etcd $(ETCD_VERSION)"
	cd test/clusterbin/etcd && $(GO) build $(CLUSTERBIN_GOFLAGS) -o $@.tmp.$$$$ go.etcd.io/etcd/server/v3 && mv -f $@.tmp.$$$$ $@
