# The local cluster: Debian packages the nodes need, the kubens-cluster CLI,
# the demo, and the integration suites that run against real clusters.
#
#   make node-deps      apt-get install what the nodes need and is missing
#   make cluster-up     start the cluster in the background; prints `export KUBECONFIG=...`
#   make cluster-status is it running, its nodes (CLUSTER_STATUS_FLAGS=--probe: and each node's mode)
#   make cluster-down   stop it and remove everything it created
#   make demo           cluster (unless KUBECONFIG points at a real one), then the plugin's flow
#   make integration    every suite under ./test (root; builds the cluster binaries first)
#
# Everything here needs root: nodes are namespaces, mounts and cgroups.

# containerd + runc run the pods, busybox-static is the tools image,
# containernetworking-plugins gives the loopback CNI plugin; iproute2 (ip netns) and
# util-linux (unshare, nsenter, mountpoint) run the kubens.service recipe on a node.
NODE_DEB_PACKAGES := containerd runc busybox-static containernetworking-plugins iproute2 util-linux
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -E)

KUBENS_CLUSTER := $(CACHE_DIR)/harness/kubens-cluster
# Recursive (=): K8S_BIN_DIR comes from clusterbin.mk, included after this file.
KUBECTL = $(K8S_BIN_DIR)/kubectl
CLUSTER_DIR ?= /tmp/oc-kubens-cluster
# The local cluster is not OpenShift: verify's debug pods use the harness's
# busybox image, imported into every node (there is no registry).
DEMO_VERIFY_FLAGS ?= --image localhost/oc-kubens/tools:test --image-pull-policy Never

.PHONY: node-deps
## node-deps: install the Debian packages the test nodes need (apt-get update once, only if something is missing)
node-deps:
	@missing=""; \
	for p in $(NODE_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Rebuilt every time: go's build cache makes that a second when nothing changed.
.PHONY: kubens-cluster
kubens-cluster:
	@mkdir -p $(dir $(KUBENS_CLUSTER))
	@$(GO) build -o $(KUBENS_CLUSTER) ./test/harness/cmd/kubens-cluster

.PHONY: cluster-up
## cluster-up: start the local cluster in the background (1 master, 2 workers) and print the KUBECONFIG line
cluster-up: cluster-bins crio-bins node-deps crio-deps kubens-cluster
	@$(SUDO) $(KUBENS_CLUSTER) up --dir $(CLUSTER_DIR) $(CLUSTER_UP_FLAGS)

.PHONY: cluster-status
## cluster-status: say whether the local cluster runs, and list its nodes
cluster-status: kubens-cluster
	@$(SUDO) $(KUBENS_CLUSTER) status --dir $(CLUSTER_DIR) $(CLUSTER_STATUS_FLAGS)

.PHONY: cluster-down
## cluster-down: stop the local cluster and remove everything it created
cluster-down: kubens-cluster
	@$(SUDO) $(KUBENS_CLUSTER) down --dir $(CLUSTER_DIR)

# The demo runs against $KUBECONFIG when it points at a reachable cluster
# other than ours, otherwise against the local cluster (started if needed).
.PHONY: demo
## demo: start the local cluster and run the plugin's main flow against it
demo: build cluster-bins crio-bins
	@set -e; \
	if [ -n "$${KUBECONFIG:-}" ] && [ "$$KUBECONFIG" != "$(CLUSTER_DIR)/kubeconfig" ] && \
	   $(KUBECTL) --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then \
	  echo "== using the cluster of KUBECONFIG=$$KUBECONFIG"; local=; \
	else \
	  $(MAKE) --no-print-directory cluster-up >/dev/null; \
	  export KUBECONFIG=$(CLUSTER_DIR)/kubeconfig; \
	  echo "== local cluster: export KUBECONFIG=$$KUBECONFIG"; local=1; \
	fi; \
	k() { echo "\$$ kubectl $$*"; $(KUBECTL) "$$@"; }; \
	p() { echo "\$$ oc kubens $$*"; $(PLUGIN_BIN) "$$@"; }; \
	if [ -z "$$local" ]; then \
	  echo "== not our local cluster: no reboots here, only status and a server-side dry run"; \
	  p status -o wide; p enable --dry-run=server; p verify --all-nodes || echo "(verify exited $$?)"; exit 0; \
	fi; \
	echo "== turn encapsulation on: plan, apply, then wait for the rolling reboots"; \
	p enable --yes --wait; \
	p status -o wide; \
	k get machineconfigpools; \
	echo "== prove it on every node: a debug pod per node compares the mount namespaces"; \
	p verify --all-nodes $(DEMO_VERIFY_FLAGS); \
	echo "== and off again"; \
	p disable --yes --wait; \
	p status; \
	p verify --all-nodes --expect not-encapsulated $(DEMO_VERIFY_FLAGS)
	@echo "== the cluster keeps running: make cluster-down stops it"

.PHONY: integration
## integration: the suites under ./test against real control planes and nodes (root)
# -p 1: one package at a time, each brings up its own clusters; 2 cores.
integration: build cluster-bins crio-bins node-deps crio-deps
	$(SUDO) env PATH="$$PATH" OC_KUBENS_BIN=$(PLUGIN_BIN) $(GO) test -p 1 -count=1 -timeout 30m ./test/...
