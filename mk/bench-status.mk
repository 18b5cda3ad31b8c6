# Benchmark of `oc kubens status` and `oc kubens wait` against 50, 500,
# 2000 and 5000 Node objects in 3 pools (master, worker, a custom infra
# pool) on the real local API server, with the simulated MCO and no
# kubelets, then with 300 old rendered configs of 500 KB. It reports wall
# time, API requests and bytes read per run (counted by wrapping the client
# transport), and how fast `wait` returns after the last node of a rollout
# is updated; it writes docs/bench/status.md and the graph
# docs/bench/scale.png (with bench-verify's figures when they are there).
#
#   make bench-status    needs root (the control plane) and the cluster binaries;
#                        about 10 minutes on 2 cores (the simulator bootstraps
#                        5000 nodes; 150 MB of old configs go into etcd)

BENCH_STATUS_REPORT := docs/bench/status.md
BENCH_STATUS_RAW := $(CACHE_DIR)/bench-status.txt
BENCH_STATUS_COUNT ?= 5
BENCH_STATUS_NODES ?= 50,500,2000,5000
BENCH_STATUS_OLD_RENDERED ?= 300

.PHONY: bench bench-status bench-status-report
## bench: every benchmark, each writing its report under docs/bench/
bench: bench-status

## bench-status: time status (table and -o wide) on 50-5000 nodes and 300 old rendered configs, and wait's reaction; writes docs/bench/status.md
bench-status: cluster-bins
	@mkdir -p $(dir $(BENCH_STATUS_RAW)) $(dir $(BENCH_STATUS_REPORT))
	KUBENS_BENCH_NODES=$(BENCH_STATUS_NODES) KUBENS_BENCH_OLD_RENDERED=$(BENCH_STATUS_OLD_RENDERED) \
	  $(GO) test ./test/e2e/control/ -run '^$$' -bench '^BenchmarkStatus$$' -benchtime $(BENCH_STATUS_COUNT)x -count 1 -timeout 60m 2>&1 \
	  | grep -Ev '^[IWE][0-9]{4} |mcosim:' | tee $(BENCH_STATUS_RAW)
	@grep -q '^ok' $(BENCH_STATUS_RAW)
	$(MAKE) --no-print-directory bench-status-report

## bench-status-report: rewrite docs/bench/status.md and the graph from the last bench-status output, without running it again
bench-status-report:
	$(MAKE) --no-print-directory bench-scale-graph
	@{ \
	  echo "# Benchmark: \`oc kubens status\` and \`oc kubens wait\`"; \
	  echo; \
	  echo "Written by \`make bench-status\` ($$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown))."; \
	  echo; \
	  echo "Setup: a real etcd + kube-apiserver on loopback with the MachineConfig CRDs, the simulated"; \
	  echo "Machine Config Operator, and object-only Node objects (no kubelets) in 3 pools: 3 masters,"; \
	  echo "every tenth node in a custom \`infra\` pool (roles worker+infra), the rest workers. Every"; \
	  echo "node carries its rendered config and state annotations, as the MCO sets them. The cluster"; \
	  echo "grows through $(BENCH_STATUS_NODES) nodes; at the largest, $(BENCH_STATUS_OLD_RENDERED) old rendered configs of"; \
	  echo "500 KB each are added (long-lived clusters keep hundreds)."; \
	  echo "Each run is the whole command in-process (client setup, discovery, lists, derivation, output),"; \
	  echo "$(BENCH_STATUS_COUNT) runs per line. Requests and response bytes are counted by wrapping the client's"; \
	  echo "transport, with compression off so the bytes are what the objects weigh."; \
	  echo; \
	  echo "![wall time and API requests of verify and status against the node count](scale.png)"; \
	  echo; \
	  echo "| nodes | old rendered configs | output | wall time per run | API requests per run | bytes read per run |"; \
	  echo "|---:|---:|---|---:|---:|---:|"; \
	  awk '/^BenchmarkStatus\/nodes=.*\/output=/ { split($$1, p, "/"); sub("nodes=", "", p[2]); sub("old-rendered=", "", p[3]); sub("output=", "", p[4]); sub(/-[0-9]+$$/, "", p[4]); \
	    for (i = 3; i < NF; i++) m[$$(i+1)] = $$i; \
	    printf "| %s | %s | %s | %.1f ms | %.0f | %.0f KB |\n", p[2], p[3], p[4], m["ns/op"] / 1e6, m["requests/op"], m["read-B/op"] / 1000 }' $(BENCH_STATUS_RAW); \
	  echo; \
	  echo "The request count does not grow with the node count: one discovery request for the"; \
	  echo "MachineConfig API, one list of pools, label-selected lists of the input MachineConfigs the"; \
	  echo "pools select and of ours, and one GET per rendered config that pools name; \`-o wide\` adds"; \
	  echo "one list of nodes, which is all that grows with them (the bytes). Rendered configs are never"; \
	  echo "listed, so the bytes read do not grow with the old ones: compare the lines of the largest"; \
	  echo "cluster with and without them. \`TestStatusRequestsDoNotGrowWithNodes\` and"; \
	  echo "\`TestStatusBytesDoNotGrowWithOldRenderedConfigs\` (test/e2e/control) assert both on every"; \
	  echo "\`make test\`."; \
	  echo; \
	  echo "The API server runs with its watch cache, as on a real cluster (the tests run without it,"; \
	  echo "\`controlplane.Options.WatchCache\`): lists, label-selected ones included, are served from"; \
	  echo "memory. Without it each label-selected list of MachineConfigs makes the API server read every"; \
	  echo "MachineConfig from etcd (the old ones weigh 150 MB) to filter them: an earlier run without the"; \
	  echo "cache took 10.7 s (table) and 7.2 s (wide) per status at 5000 nodes with 300 old configs, for"; \
	  echo "the same bytes read. An API server that cannot serve consistent lists from its cache (older"; \
	  echo "releases) pays that read on every run."; \
	  echo; \
	  echo "**wait**: the worker pool is put in the last step of a rollout (its last node \`Working\`, one"; \
	  echo "machine not updated) and \`wait\` started; once it follows the rollout (it then also follows"; \
	  echo "the nodes, to name stuck ones), the test finishes the rollout as the MCO does: the node's"; \
	  echo "state annotation to \`Done\`, then the pool's status to Updated. Reaction is the time from"; \
	  echo "that node update to wait's return (the MCO's own delay before it updates the pool is not"; \
	  echo "the plugin's and is not in it); the requests and bytes are the whole wait's."; \
	  echo; \
	  echo "| nodes | old rendered configs | reaction (mean) | reaction (worst) | API requests | bytes read |"; \
	  echo "|---:|---:|---:|---:|---:|---:|"; \
	  awk '/^BenchmarkStatus\/nodes=.*\/wait\// { split($$1, p, "/"); sub("nodes=", "", p[2]); sub("old-rendered=", "", p[4]); sub(/-[0-9]+$$/, "", p[4]); \
	    for (i = 3; i < NF; i++) m[$$(i+1)] = $$i; \
	    printf "| %s | %s | %.0f ms | %.0f ms | %.0f | %.0f KB |\n", p[2], p[4], m["reaction-s"] * 1000, m["reaction-max-s"] * 1000, m["requests/op"], m["read-B/op"] / 1000 }' $(BENCH_STATUS_RAW); \
	  echo; \
	  echo "Memory: status lists the nodes once; wait's node watch keeps one store of nodes cut down to"; \
	  echo "what it reads (name, labels, the MCO annotations, the Ready condition) and hands each change"; \
	  echo "on as one sorted list."; \
	  echo; \
	  echo "Targets (issue 15): status under 2 s on 5000 nodes with 300 old rendered configs; bytes read"; \
	  echo "reported and independent of the old rendered configs; wait reacting to the last node's"; \
	  echo "update within 1 s."; \
	  echo; \
	  echo "Machine: $$(nproc) CPUs, $$(go env GOOS)/$$(go env GOARCH), $$(go version | awk '{print $$3}'). The API server, etcd,"; \
	  echo "the simulator and the plugin share these cores, with whatever else runs on the machine: load"; \
	  echo "average $$(cut -d' ' -f1-3 /proc/loadavg) when this report was written."; \
	  echo; \
	  echo "Raw \`go test -bench\` output:"; \
	  echo; \
	  echo '```'; \
	  grep -E '^(goos|goarch|cpu|Benchmark)' $(BENCH_STATUS_RAW); \
	  echo '```'; \
	} > $(BENCH_STATUS_REPORT)
	@echo "wrote $(BENCH_STATUS_REPORT)"
