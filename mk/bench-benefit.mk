# The benefit of encapsulation on one node under one workload: the local
# cluster (1 master, 1 worker, RHCOS-like nodes) with the simulated MCO runs
# pod churn on worker-0, first plain, then after `oc kubens enable` has
# rebooted it into encapsulation, and samples systemd's CPU, the mounts it
# sees, its mount units and the churn of its mount table from the host.
# test/e2e/benefit writes docs/bench/benefit.md and docs/bench/benefit.png.
# About 6 minutes; not part of `make test` (the test skips without the gate).
#
#   make bench-benefit    needs root (the cluster); starts and stops its own cluster

BENCH_BENEFIT_REPORT := docs/bench/benefit.md
BENCH_BENEFIT_RAW := $(CACHE_DIR)/bench-benefit.txt
# Knobs, passed to the test: the sampling window and warm-up of each state,
# the churn pods kept in flight and how long each sleeps.
BENCH_BENEFIT_WINDOW ?= 60s
BENCH_BENEFIT_WARMUP ?= 20s
BENCH_BENEFIT_PODS ?= 40
BENCH_BENEFIT_POD_SLEEP ?= 5s

.PHONY: bench bench-benefit
bench: bench-benefit

## bench-benefit: systemd under pod churn on one node, plain then encapsulated; writes docs/bench/benefit.{md,png}
bench-benefit: build cluster-bins crio-bins node-deps crio-deps
	@mkdir -p $(dir $(BENCH_BENEFIT_RAW)) $(dir $(BENCH_BENEFIT_REPORT))
	$(SUDO) env PATH="$$PATH" OC_KUBENS_BIN=$(PLUGIN_BIN) KUBENS_BENCH_BENEFIT=1 \
	  KUBENS_BENEFIT_REPORT=$(REPO_ROOT)/$(BENCH_BENEFIT_REPORT) \
	  KUBENS_BENEFIT_COMMIT=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
	  KUBENS_BENEFIT_WINDOW=$(BENCH_BENEFIT_WINDOW) KUBENS_BENEFIT_WARMUP=$(BENCH_BENEFIT_WARMUP) \
	  KUBENS_BENEFIT_PODS=$(BENCH_BENEFIT_PODS) KUBENS_BENEFIT_POD_SLEEP=$(BENCH_BENEFIT_POD_SLEEP) \
	  $(GO) test ./test/e2e/benefit/ -run '^TestBenefitReport$$' -count 1 -v -timeout 25m 2>&1 \
	  | grep -Ev '^[IWE][0-9]{4} ' | tee $(BENCH_BENEFIT_RAW)
	@grep -q -- '--- PASS: TestBenefitReport' $(BENCH_BENEFIT_RAW)
	@echo "wrote $(BENCH_BENEFIT_REPORT) and $(BENCH_BENEFIT_REPORT:.md=.png)"
