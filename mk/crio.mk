# CRI-O for nodes that boot like RHCOS (issue 10): crio and pinns, built from
# the Go module github.com/cri-o/cri-o at an exact version and cached like the
# other cluster binaries under $(CACHE_DIR)/clusterbin/crio-<version>/.
# conmon and skopeo come from Debian (crio-deps), runc from node-deps.
#
#   make crio-deps   apt-get install conmon and skopeo if missing
#   make crio-bins   build crio and pinns (cold: several minutes; warm: nothing)
#   make crio-smoke  (root) run them once in a throw-away namespace: version,
#                    pinns, crio joins $KUBENSMNT and serves its CRI socket
#
# The local cluster's nodes run CRI-O (test/harness/node/rhcos.go), so
# `make integration`, `make demo` and `make cluster-up` depend on crio-bins
# and crio-deps; crio-smoke is a stand-alone check.
#
# The build module is test/clusterbin/crio (go.mod and go.sum committed; the
# versions are exactly cri-o v1.34.0's own go.mod). Notes:
# - CGO_ENABLED=1: github.com/containers/kubensmnt's constructor, which joins
#   the mount namespace named by $KUBENSMNT before the Go runtime starts, is C.
#   The recipe checks that kubensmnt $(CRIO_KUBENSMNT_VERSION) is linked in.
# - Build tags: no ostree, no gpgme (openpgp in Go), no btrfs or devicemapper
#   graph drivers, so no C libraries beyond libc are needed. Without the
#   `seccomp` and `selinux` tags, crio has neither (neither does the VM need it).
# - The checksum database answers 404 for github.com/CloudNativeAI/model-spec
#   and github.com/containerd/nri. Their sums are in the committed go.sum, so
#   a build verifies against it and needs no GONOSUMDB. Only when adding or
#   bumping modules: GONOSUMDB=github.com/CloudNativeAI,github.com/containerd/nri.
# - pinns is plain C in the module's pinns/ folder (read from the module cache),
#   built static with upstream's flags.
# - As with mk/clusterbin.mk: the version is part of the path, a binary that is
#   there is never rebuilt, and each is written to a temporary name and renamed
#   into place, so a killed build never leaves a truncated binary.

CRIO_VERSION := v1.34.0
CRIO_KUBENSMNT_VERSION := v1.2.0
CRIO_BIN_DIR := $(CACHE_DIR)/clusterbin/crio-$(CRIO_VERSION)
CRIO_BIN := $(CRIO_BIN_DIR)/crio
PINNS_BIN := $(CRIO_BIN_DIR)/pinns
CRIO_UNIT := $(CRIO_BIN_DIR)/crio.service
CRIO_BINS := $(CRIO_BIN) $(PINNS_BIN) $(CRIO_UNIT)
CRIO_MODULE_DIR := test/clusterbin/crio

CRIO_BUILDTAGS := containers_image_ostree_stub containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper
CRIO_GOFLAGS := -trimpath -ldflags='-s -w' -tags '$(CRIO_BUILDTAGS)'
# Upstream's pinns/Makefile flags (-Werror dropped: a newer gcc's new warning
# must not break the harness).
PINNS_CFLAGS := -std=c99 -Os -Wall -Wextra -static

# conmon monitors each container; the OCI runtime is runc (node-deps):
# bookworm's crun 1.8.1 refuses the spec version CRI-O 1.34 writes ("unknown
# version specified"). skopeo loads the harness's images into each node's
# CRI-O storage.
CRIO_DEB_PACKAGES := conmon skopeo

.PHONY: crio-deps
## crio-deps: install the Debian packages the CRI-O nodes need (conmon, skopeo) if missing
crio-deps:
	@missing=""; \
	for p in $(CRIO_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

.PHONY: crio-bins
## crio-bins: build CRI-O $(CRIO_VERSION) (crio, pinns; its crio.service) into .cache/clusterbin (cached)
crio-bins: $(CRIO_BINS)

# No prerequisites on purpose: the cache is keyed by version, not by mtime.
$(CRIO_BIN):
	@mkdir -p $(@D)
	@echo "building crio $(CRIO_VERSION) (cold: several minutes)"
	cd $(CRIO_MODULE_DIR) && CGO_ENABLED=1 $(GO) build $(CRIO_GOFLAGS) -o $@.tmp.$$$$ github.com/cri-o/cri-o/cmd/crio && \
	  { $(GO) version -m $@.tmp.$$$$ | grep -Eq '^[[:space:]]+dep[[:space:]]+github.com/containers/kubensmnt[[:space:]]+$(CRIO_KUBENSMNT_VERSION)[[:space:]]' || \
	    { echo "crio: github.com/containers/kubensmnt $(CRIO_KUBENSMNT_VERSION) is not linked in" >&2; rm -f $@.tmp.$$$$; exit 1; }; } && \
	  mv -f $@.tmp.$$$$ $@

$(PINNS_BIN):
	@mkdir -p $(@D)
	@echo "building pinns $(CRIO_VERSION)"
	src="$$(cd $(CRIO_MODULE_DIR) && $(GO) mod download github.com/cri-o/cri-o && $(GO) list -m -f '{{.Dir}}' github.com/cri-o/cri-o)/pinns/src" && \
	  $(CC) $(PINNS_CFLAGS) -o $@.tmp.$$$$ "$$src"/*.c && strip -s $@.tmp.$$$$ && mv -f $@.tmp.$$$$ $@

# crio.service as CRI-O ships it, for the nodes' image (from the module, not
# from memory).
$(CRIO_UNIT):
	@mkdir -p $(@D)
	src="$$(cd $(CRIO_MODULE_DIR) && $(GO) mod download github.com/cri-o/cri-o && $(GO) list -m -f '{{.Dir}}' github.com/cri-o/cri-o)/contrib/systemd/crio.service" && \
	  cp "$$src" $@.tmp.$$$$ && chmod 644 $@.tmp.$$$$ && mv -f $@.tmp.$$$$ $@

.PHONY: crio-smoke
## crio-smoke: run the CRI-O build once (root): version, pinns, KUBENSMNT joined, CRI socket served; host untouched
crio-smoke: crio-bins crio-deps
	$(SUDO) $(CRIO_MODULE_DIR)/smoke.sh $(CRIO_BIN_DIR)

export KUBENS_TEST_CRIO_BIN_DIR := $(CRIO_BIN_DIR)
