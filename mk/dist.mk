# Release archives and the krew install test.
#
#   make dist        static archives for every platform krew serves, named as
#                    .krew.yaml and .goreleaser.yaml expect, plus a checksums file
#   make krew-test   builds krew's own tools, renders .krew.yaml for a local tag
#                    with the real sums of `make dist`, validates and installs it
#                    (all platforms, over loopback), then runs the plugin through
#                    a real kubectl. `make test` runs it.
#   make docs        regenerates docs/reference/ from the cobra commands;
#                    `make docs-check` (run by `make test`) fails when they are stale
#
# Archives are reproducible: -trimpath, no VCS stamping, version/commit/date
# taken from git (the commit time, not the clock), and mkarchive writes every
# entry with the commit time and owner root. Two runs on one commit give the
# same sha256 sums.

DIST_DIR ?= $(REPO_ROOT)/dist
# The tag the archives are named after and the binary reports. A release sets
# it (make dist DIST_TAG=v0.1.0); otherwise the nearest v* tag, or v0.0.0-dev.
# Same stamping as `make build` (mk/build.mk) when that fragment is there.
DIST_TAG ?= $(or $(BUILD_VERSION),$(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null),v0.0.0-dev)
DIST_COMMIT := $(or $(BUILD_COMMIT),$(shell git rev-parse HEAD 2>/dev/null),unknown)
DIST_EPOCH := $(or $(shell git log -1 --format=%ct 2>/dev/null),0)
DIST_DATE := $(shell date -u -d @$(DIST_EPOCH) +%Y-%m-%dT%H:%M:%SZ)

# os/arch pairs: OpenShift's four Linux architectures, macOS, Windows. Keep in
# step with .krew.yaml and .goreleaser.yaml (test/krew checks).
DIST_PLATFORMS := darwin/amd64 darwin/arm64 linux/amd64 linux/arm64 linux/ppc64le linux/s390x windows/amd64

DIST_VERSION_PKG := github.com/oc-kubens/oc-kubens/internal/version
DIST_LDFLAGS := -s -w \
	-X $(DIST_VERSION_PKG).version=$(DIST_TAG) \
	-X $(DIST_VERSION_PKG).commit=$(DIST_COMMIT) \
	-X $(DIST_VERSION_PKG).date=$(DIST_DATE)

MKARCHIVE := $(CACHE_DIR)/tools/mkarchive

# Names come from these functions only, so the recipe, `make dist-names` (read
# by the name-agreement test) and the checksums file cannot drift apart.
dist_os = $(word 1,$(subst /, ,$1))
dist_arch = $(word 2,$(subst /, ,$1))
dist_exe = $(if $(filter windows,$(call dist_os,$1)),.exe)
dist_archive = oc-kubens_$(DIST_TAG)_$(call dist_os,$1)_$(call dist_arch,$1).$(if $(filter windows,$(call dist_os,$1)),zip,tar.gz)
DIST_ARCHIVES := $(foreach p,$(DIST_PLATFORMS),$(call dist_archive,$p))
DIST_CHECKSUMS := oc-kubens_$(DIST_TAG)_checksums.txt

# One platform: a static build, then the archive with the binary, LICENSE and
# the kubectl completion script. (The blank line before endef ends each recipe
# line when $(foreach) joins the platforms.)
define dist_one
	@echo "dist: $1 -> $(call dist_archive,$1)"
	@CGO_ENABLED=0 GOOS=$(call dist_os,$1) GOARCH=$(call dist_arch,$1) $(GO) build -trimpath -buildvcs=false \
	  -ldflags '$(DIST_LDFLAGS)' -o $(DIST_DIR)/.build/$(subst /,_,$1)/kubectl-kubens$(call dist_exe,$1) ./cmd/oc-kubens
	@$(MKARCHIVE) -o $(DIST_DIR)/$(call dist_archive,$1) -mtime $(DIST_EPOCH) \
	  $(DIST_DIR)/.build/$(subst /,_,$1)/kubectl-kubens$(call dist_exe,$1) LICENSE kubectl_complete-kubens

endef

.PHONY: dist
## dist: static release archives for all 7 platforms + checksums in dist/ (DIST_TAG=vX.Y.Z to name a release)
dist: $(MKARCHIVE)
	@rm -rf $(DIST_DIR) && mkdir -p $(DIST_DIR)/.build
	$(foreach p,$(DIST_PLATFORMS),$(call dist_one,$p))
	@rm -rf $(DIST_DIR)/.build
	@cd $(DIST_DIR) && sha256sum $(DIST_ARCHIVES) > $(DIST_CHECKSUMS)
	@cd $(DIST_DIR) && ls -l $(DIST_ARCHIVES) | awk '{printf "%10d bytes  %s\n", $$5, $$9}'

.PHONY: dist-names
# dist-names: the archive names `make dist` writes for DIST_TAG, one a line.
dist-names:
	@printf '%s\n' $(DIST_ARCHIVES) $(DIST_CHECKSUMS)

$(MKARCHIVE): hack/mkarchive/main.go
	@mkdir -p $(@D)
	$(GO) build -trimpath -o $@ ./hack/mkarchive

# --- krew install test ------------------------------------------------------

KREW_VERSION := v0.4.4
KREW_TOOLS_DIR := $(CACHE_DIR)/tools/krew-$(KREW_VERSION)
KREW_TOOLS := $(KREW_TOOLS_DIR)/krew $(KREW_TOOLS_DIR)/validate-krew-manifest
# A tag krew accepts as a version (semver with a leading v).
KREW_TEST_TAG := v0.0.0-krewtest
KREW_TEST_DIST_DIR := $(CACHE_DIR)/krew-test/dist
# The real kubectl from the cluster binaries (mk/clusterbin.mk builds it only
# when missing).
KREW_TEST_KUBECTL := $(or $(K8S_BIN_DIR),$(CACHE_DIR)/clusterbin/k8s-v1.37.2)/kubectl

.PHONY: krew-tools
## krew-tools: build krew and validate-krew-manifest (sigs.k8s.io/krew v0.4.4) into .cache/tools (cached)
krew-tools: $(KREW_TOOLS)

# No prerequisites: the cache is keyed by version. Linked to a temporary name
# and renamed, so an interrupted build never leaves a binary a later run trusts.
$(KREW_TOOLS_DIR)/%:
	@mkdir -p $(@D)
	@echo "building $* $(KREW_VERSION)"
	cd test/krewbin && $(GO) build -trimpath -o $@.tmp.$$$$ sigs.k8s.io/krew/cmd/$* && mv -f $@.tmp.$$$$ $@

.PHONY: krew-test
## krew-test: render, validate and install the krew manifest from `make dist` archives, run it through kubectl
krew-test: $(KREW_TOOLS) $(KREW_TEST_KUBECTL)
	$(MAKE) --no-print-directory dist DIST_TAG=$(KREW_TEST_TAG) DIST_DIR=$(KREW_TEST_DIST_DIR)
	@# Reproducible: a second build (warm cache, about 30 s) must give the same sums.
	$(MAKE) --no-print-directory dist DIST_TAG=$(KREW_TEST_TAG) DIST_DIR=$(KREW_TEST_DIST_DIR).again >/dev/null
	@cmp $(KREW_TEST_DIST_DIR)/oc-kubens_$(KREW_TEST_TAG)_checksums.txt $(KREW_TEST_DIST_DIR).again/oc-kubens_$(KREW_TEST_TAG)_checksums.txt \
	  && echo "dist is reproducible: a second build gave the same sha256 sums" && rm -rf $(KREW_TEST_DIST_DIR).again
	KUBENS_KREW_DIST_DIR=$(KREW_TEST_DIST_DIR) KUBENS_KREW_TAG=$(KREW_TEST_TAG) \
	KUBENS_KREW_TOOLS_DIR=$(KREW_TOOLS_DIR) KUBENS_KREW_KUBECTL=$(KREW_TEST_KUBECTL) \
	  $(GO) test -count=1 -v ./test/krew/

# make merges the prerequisites of `test` from every rule: this adds the krew
# flow to the entry point CI runs.
test: krew-test

# --- reference docs -----------------------------------------------------------

.PHONY: docs
## docs: regenerate docs/reference/ (one page per command) from the cobra commands
docs:
	$(GO) run ./hack/gendocs docs/reference

.PHONY: docs-check
## docs-check: fail when docs/reference/ is not what `make docs` would write (a flag or help text changed)
docs-check:
	$(GO) test -count=1 ./hack/...

test: docs-check
