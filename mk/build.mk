# Building the plugin, unit tests, lint, clean.
#
#   make build   static bin/oc-kubens (CGO_ENABLED=0) stamped with version,
#                commit and build date
#   make unit    go test over ./pkg ./cmd ./internal: seconds, no cluster, no root
#   make lint    gofmt check, go vet, staticcheck (pinned in tools/go.mod)
#   make fuzz    fuzz render's command line for FUZZTIME (60s; part of make test)
#   make clean   remove bin/ and dist/ (the .cache/ of cluster binaries stays)

BIN_DIR := $(REPO_ROOT)/bin
PLUGIN_BIN := $(BIN_DIR)/oc-kubens

# Stamped into internal/version. The date is the commit's, not the clock's,
# so two builds of one commit are byte-identical.
BUILD_VERSION ?= $(or $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null),v0.0.0-dev)
BUILD_COMMIT ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
BUILD_DATE ?= $(shell date -u -d @$(or $(shell git log -1 --format=%ct 2>/dev/null),0) +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/oc-kubens/oc-kubens/internal/version
BUILD_LDFLAGS := -s -w \
	-X $(VERSION_PKG).version=$(BUILD_VERSION) \
	-X $(VERSION_PKG).commit=$(BUILD_COMMIT) \
	-X $(VERSION_PKG).date=$(BUILD_DATE)

# Packages the unit tests cover. ./test/ holds the integration suites that
# need root and a local cluster; `make integration` runs those.
# The go tool skips folders named testdata in ./... patterns, so the
# validation test of the real-world-shaped fixtures is named explicitly.
UNIT_PKGS := ./pkg/... ./cmd/... ./internal/... ./test/testdata/realworld
# Folders gofmt checks (nested modules and caches excluded by naming them).
GOFMT_DIRS := $(wildcard cmd pkg internal test hack tools)

# staticcheck is pinned as a Go tool in the separate tools/ module; the
# binary is rebuilt whenever that pin changes.
TOOLS_BIN_DIR := $(CACHE_DIR)/tools
STATICCHECK := $(TOOLS_BIN_DIR)/staticcheck

.PHONY: build
## build: static bin/oc-kubens with version, commit and date from git
build:
	@mkdir -p $(BIN_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(BUILD_LDFLAGS)' -o $(PLUGIN_BIN) ./cmd/oc-kubens

.PHONY: unit
## unit: unit tests (no cluster, no root); the binary tests use bin/oc-kubens
unit: build
	OC_KUBENS_BIN=$(PLUGIN_BIN) $(GO) test $(UNIT_PKGS)

# How long `make fuzz` fuzzes. New crashers land in
# pkg/plugin/testdata/fuzz/FuzzRenderArgs/, which plain `go test` replays.
FUZZTIME ?= 60s

.PHONY: fuzz
## fuzz: fuzz render's command line for FUZZTIME (default 60s): no panic, every error one line
fuzz:
	$(GO) test ./pkg/plugin -run '^$$' -fuzz '^FuzzRenderArgs$$' -fuzztime $(FUZZTIME)

.PHONY: lint
## lint: gofmt, go vet and staticcheck over the main module
lint: $(STATICCHECK)
	@unformatted="$$(gofmt -l $(GOFMT_DIRS))"; \
	if [ -n "$$unformatted" ]; then \
	  echo "gofmt needed on:"; echo "$$unformatted"; echo "run: gofmt -w <files>"; exit 1; \
	fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK): tools/go.mod tools/go.sum
	@mkdir -p $(@D)
	cd tools && $(GO) build -trimpath -o $@.tmp.$$$$ honnef.co/go/tools/cmd/staticcheck && mv -f $@.tmp.$$$$ $@

.PHONY: tools
## tools: build the pinned developer tools (staticcheck) into .cache/tools
tools: $(STATICCHECK)

.PHONY: clean
## clean: remove bin/ and dist/ (keeps .cache/, which holds the slow cluster builds)
clean:
	rm -rf $(BIN_DIR) $(REPO_ROOT)/dist
