# Benchmark of `oc kubens verify --all-nodes` against simulated fleets of
# 50, 500, 2000 and 5000 Node objects on the real local API server (no
# kubelets) whose debug pods an agent in the test completes through the
# status subresource with a realistic report, as a kubelet would; then
# `measure` on the largest fleet. In the same run, the seed's manual
# procedure node by node (one debug namespace and one pod per node in turn)
# on a sample of nodes, scaled to each fleet. Writes docs/bench/verify.md
# and the graph docs/bench/scale.png (with bench-status's figures when
# they are there).
#
#   make bench-verify    needs root (the control plane) and the cluster binaries;
#                        about 15 minutes on 2 cores (5000 nodes to create and
#                        delete, each fleet verified twice)

BENCH_VERIFY_REPORT := docs/bench/verify.md
BENCH_VERIFY_RAW := $(CACHE_DIR)/bench-verify.txt
BENCH_VERIFY_NODES ?= 50,500,2000,5000
BENCH_VERIFY_SAMPLE ?= 20
BENCH_MEASURE_WINDOW_S ?= 10
BENCH_SCALE_PNG := docs/bench/scale.png

.PHONY: bench bench-verify bench-verify-report bench-scale-graph
bench: bench-verify

## bench-verify: time verify on 50-5000 simulated nodes vs node by node, and measure on 5000; writes docs/bench/verify.md
bench-verify: cluster-bins
	@mkdir -p $(dir $(BENCH_VERIFY_RAW)) $(dir $(BENCH_VERIFY_REPORT))
	KUBENS_BENCH_NODES=$(BENCH_VERIFY_NODES) KUBENS_BENCH_SERIAL_SAMPLE=$(BENCH_VERIFY_SAMPLE) \
	  KUBENS_BENCH_MEASURE_WINDOW_S=$(BENCH_MEASURE_WINDOW_S) \
	  $(GO) test ./test/e2e/verify/ -run '^$$' -bench '^BenchmarkVerify$$' -benchtime 1x -count 1 -timeout 90m 2>&1 \
	  | grep -Ev '^[IWE][0-9]{4} ' | tee $(BENCH_VERIFY_RAW)
	@grep -q '^ok' $(BENCH_VERIFY_RAW)
	$(MAKE) --no-print-directory bench-verify-report

## bench-verify-report: rewrite docs/bench/verify.md and the graph from the last bench-verify output, without running it again
bench-verify-report:
	$(MAKE) --no-print-directory bench-scale-graph
	@{ \
	  echo "# Benchmark: \`oc kubens verify --all-nodes\` and \`oc kubens measure\`"; \
	  echo; \
	  echo "Written by \`make bench-verify\` ($$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $$(git rev-parse --short HEAD 2>/dev/null || echo unknown))."; \
	  echo; \
	  echo "Setup: a real etcd + kube-apiserver + kube-controller-manager on loopback, Node objects"; \
	  echo "and no kubelets: the fleet grows through $(BENCH_VERIFY_NODES) nodes, each size measured"; \
	  echo "once. An agent in the test plays every kubelet for the debug pods: for each new pod it"; \
	  echo "writes \`Running\`, then \`Succeeded\` with a terminated container whose termination message"; \
	  echo "is a real v1 probe report (an encapsulated CRI-O node), through the status subresource."; \
	  echo "Each pod takes 1 s from creation to report, about what a real node takes (the e2e suite"; \
	  echo "measures 0.9-1.4 s for a whole one-node verify on the harness's real kubelets)."; \
	  echo "Between runs the test deletes the previous run's pods (one delete of the collection) and"; \
	  echo "waits until its namespace is gone, so no run shares the API server with that clean-up."; \
	  echo; \
	  echo "- **verify**: the built binary (\`CGO_ENABLED=0\`), run as a child process with default flags"; \
	  echo "  (\`--parallelism\` chosen by the node count: 100, or a fifth of the nodes when that is more,"; \
	  echo "  at most 1000); wall time from exec to exit, peak RSS from its rusage (maxrss)."; \
	  echo "- **API requests**: the same command in-process with its REST transport wrapped; writes are"; \
	  echo "  POST/PUT/PATCH/DELETE (namespace create, one pod create per node, namespace delete)."; \
	  echo "- **node by node**: the seed's procedure as \`oc debug node/NAME\` does it, one node after the"; \
	  echo "  other: create a debug namespace, create the pod, watch until it has its result, delete the"; \
	  echo "  namespace. Run once on a sample of $(BENCH_VERIFY_SAMPLE) nodes and scaled linearly to each"; \
	  echo "  fleet (running 5000 nodes in turn would take hours); the human typing \`chroot /host\` and"; \
	  echo "  three \`readlink\` per node is not counted."; \
	  echo; \
	  echo "![wall time and API requests of verify and status against the node count](scale.png)"; \
	  echo; \
	  echo "| nodes | parallelism | verify wall | peak RSS | API writes per node | API requests per node | node by node (per node) | node by node (all, scaled) | speedup |"; \
	  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"; \
	  awk '/^BenchmarkVerify\/nodes=/ { split($$1, p, "/"); sub("nodes=", "", p[2]); \
	    for (i = 3; i < NF; i++) m[$$(i+1)] = $$i; \
	    printf "| %s | %d | %.2f s | %.0f MiB | %.3f | %.3f | %.3f s | %.0f s | %.0fx |\n", p[2], m["parallelism"], m["wall-s"], m["peak-rss-MiB"], m["writes/node"], m["requests/node"], m["serial-s/node"], m["serial-est-s"], m["speedup-x"] }' $(BENCH_VERIFY_RAW); \
	  echo; \
	  echo "**measure** on the largest fleet, each pod taking its $(BENCH_MEASURE_WINDOW_S) s window plus 1 s to start:"; \
	  echo; \
	  echo "| nodes | window | parallelism | measure wall | peak RSS |"; \
	  echo "|---:|---:|---:|---:|---:|"; \
	  awk '/^BenchmarkVerify\/measure\// { split($$1, p, "/"); sub("nodes=", "", p[3]); sub("window=", "", p[4]); sub(/-[0-9]+$$/, "", p[4]); \
	    for (i = 3; i < NF; i++) m[$$(i+1)] = $$i; \
	    printf "| %s | %s | %d | %.2f s | %.0f MiB |\n", p[3], p[4], m["parallelism"], m["wall-s"], m["peak-rss-MiB"] }' $(BENCH_VERIFY_RAW); \
	  echo; \
	  echo "verify pays each node's pod latency once per wave of \`--parallelism\` pods while node by"; \
	  echo "node pays it for every node. With a fixed 100 pods at once, 5000 nodes took 50 waves (50 s of"; \
	  echo "pod latency alone, over 9 minutes for measure's 10 s window); the default now grows with the"; \
	  echo "cluster so that up to 5000 nodes take at most 5 waves. The parallelism does not set the API"; \
	  echo "load: every node costs one pod create and its kubelet's status writes whatever the"; \
	  echo "parallelism, pod creations stay 8 in flight (so a slower API server gets fewer per second),"; \
	  echo "and the API server's 429 answers are retried by client-go after their Retry-After. The"; \
	  echo "client's rate ceiling went from 100 to 500 requests/s: at 100 it alone made 5000 pod"; \
	  echo "creations take 50 s."; \
	  echo; \
	  echo "Memory: verify and measure list the nodes once and keep that list; the engine keeps, per"; \
	  echo "node, its result and, only while its pod is in flight, the pod's last state (a finished"; \
	  echo "pod is dropped at once). What grows beyond that is garbage between collections, from"; \
	  echo "decoding three watch events per pod (each carries the 7 KB probe script): the binary sets a"; \
	  echo "soft heap limit of 100 MiB (\`cmd/oc-kubens\`; GOMEMLIMIT replaces it), which took verify of"; \
	  echo "5000 nodes from 310 MiB to 197 MiB peak RSS (one run each) at the same speed. measure keeps each node's"; \
	  echo "samples until the end and stays above it (the figure above); no target is set for it, and"; \
	  echo "a heap profile of it has not been taken yet."; \
	  echo; \
	  echo "Targets (issue 15): 5000 nodes in under 60 s on a 2-core machine; at most 1.1 API writes per"; \
	  echo "node; plugin peak RSS under 200 MiB; measure on 5000 nodes with a 10 s window in under 90 s."; \
	  echo "\`TestVerifyAndMeasureRequestsDoNotGrowWithNodes\` (test/e2e/verify) asserts the writes per"; \
	  echo "node and that nothing but the pod creates grows with the nodes, for both, on every \`make test\`."; \
	  echo; \
	  echo "Machine: $$(nproc) CPUs, $$(go env GOOS)/$$(go env GOARCH), $$(go version | awk '{print $$3}'). The API server, etcd,"; \
	  echo "the controller manager, the agent and the plugin share these cores, with whatever else runs on"; \
	  echo "the machine: load average $$(cut -d' ' -f1-3 /proc/loadavg) when this report was written."; \
	  echo; \
	  echo "Raw \`go test -bench\` output:"; \
	  echo; \
	  echo '```'; \
	  grep -E '^(goos|goarch|cpu|Benchmark|    bench_test)' $(BENCH_VERIFY_RAW); \
	  echo '```'; \
	} > $(BENCH_VERIFY_REPORT)
	@echo "wrote $(BENCH_VERIFY_REPORT)"

## bench-scale-graph: draw docs/bench/scale.png from the last bench-verify and bench-status outputs
bench-scale-graph:
	$(GO) run ./test/benchplot -verify $(BENCH_VERIFY_RAW) -status $(BENCH_STATUS_RAW) -o $(BENCH_SCALE_PNG)
