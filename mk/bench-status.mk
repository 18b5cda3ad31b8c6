# Benchmark of `oc kubens status` against 500 Node objects in 3 pools
# (master, worker, a custom infra pool) on the real local API server, with
# the simulated MCO and no kubelets. It reports wall time and API requests
# per run (counted by wrapping the client transport), and writes the report
# to docs/bench/status.md.
#
#   make bench-status    needs root (the control plane) and the cluster binaries

BENCH_STATUS_REPORT := docs/bench/status.md
BENCH_STATUS_RAW := $(CACHE_DIR)/bench-status.txt
BENCH_STATUS_COUNT ?= 20

.PHONY: bench bench-status
## bench: every benchmark, each writing its report under docs/bench/
bench: bench-status

## bench-status: time `status` (table and -o wide) on 50 and 500 nodes; writes docs/bench/status.md
bench-status: cluster-bins
	@mkdir -p $(dir $(BENCH_STATUS_RAW)) $(dir $(BENCH_STATUS_REPORT))
	$(GO) test ./test/e2e/control/ -run '^$$' -bench '^BenchmarkStatus$$' -benchtime $(BENCH_STATUS_COUNT)x -count 1 \
	  | grep -v 'mcosim:' | tee $(BENCH_STATUS_RAW)
	@grep -q '^ok' $(BENCH_STATUS_RAW)
	@{ \
	  echo "# Benchmark: \`oc kubens status\`"; \
	  echo; \
	  echo "Written by \`make bench-status\` ($$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown))."; \
	  echo; \
	  echo "Setup: a real etcd + kube-apiserver on loopback with the MachineConfig CRDs, the simulated"; \
	  echo "Machine Config Operator, and object-only Node objects (no kubelets) in 3 pools: 3 masters,"; \
	  echo "a tenth of the nodes in a custom \`infra\` pool (roles worker+infra), the rest workers. Every"; \
	  echo "node carries its rendered config and state annotations, as the MCO sets them."; \
	  echo "Each run is the whole command in-process (client setup, discovery, lists, derivation, output),"; \
	  echo "$(BENCH_STATUS_COUNT) runs per line. Requests are counted by wrapping the client's transport."; \
	  echo; \
	  echo "| nodes | output | wall time per run | API requests per run |"; \
	  echo "|---:|---|---:|---:|"; \
	  awk '/^BenchmarkStatus\// { split($$1, p, "/"); sub("nodes=", "", p[2]); sub("output=", "", p[3]); sub(/-[0-9]+$$/, "", p[3]); \
	    printf "| %s | %s | %.1f ms | %s |\n", p[2], p[3], $$3 / 1e6, $$5 }' $(BENCH_STATUS_RAW); \
	  echo; \
	  echo "The request count does not grow with the node count: one discovery request for the"; \
	  echo "MachineConfig API, then one list each of MachineConfigPools and MachineConfigs, plus one"; \
	  echo "list of Nodes for \`-o wide\`/json/yaml. No request is made per node."; \
	  echo "\`TestStatusRequestsDoNotGrowWithNodes\` (test/e2e/control) asserts it on every \`make test\`."; \
	  echo; \
	  echo "Machine: $$(nproc) CPUs, $$(go env GOOS)/$$(go env GOARCH), $$(go version | awk '{print $$3}')."; \
	  echo; \
	  echo "Raw \`go test -bench\` output:"; \
	  echo; \
	  echo '```'; \
	  grep -E '^(goos|goarch|cpu|Benchmark)' $(BENCH_STATUS_RAW); \
	  echo '```'; \
	} > $(BENCH_STATUS_REPORT)
	@echo "wrote $(BENCH_STATUS_REPORT)"
