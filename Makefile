# oc-kubens Makefile.
#
# The two commands a person needs (see README):
#   make demo   starts a local cluster (real apiserver, real nodes, simulated MCO)
#               and runs the plugin's main flow against it
#   make test   installs what is missing, builds everything, runs every test
#
# Each concern keeps its targets in a fragment under mk/ so they can change
# independently; this file holds only the shared variables and the entry points.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

REPO_ROOT := $(CURDIR)
# Everything built here (cluster binaries, tools) is cached under the ignored
# .cache/ folder, keyed by version, so a warm run skips the builds.
CACHE_DIR ?= $(REPO_ROOT)/.cache

GO ?= go
export CGO_ENABLED ?= 0

include $(sort $(wildcard mk/*.mk))

.PHONY: test
## test: everything CI runs: lint, unit tests, 60 s of fuzzing, then the integration suites on a real local cluster
test: lint unit fuzz integration
