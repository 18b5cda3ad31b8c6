package verify

import "testing"

// The default parallelism grows with the cluster so that a large one pays
// a few waves of pod latency, not one per hundred nodes; small clusters keep
// the old 100, and the largest stop at MaxAutoParallelism.
func TestAutoParallelism(t *testing.T) {
	for _, c := range []struct{ nodes, want int }{
		{1, 100}, {50, 100}, {500, 100}, {501, 101}, {2000, 400}, {5000, 1000}, {5001, 1000}, {20000, 1000},
	} {
		if got := AutoParallelism(c.nodes); got != c.want {
			t.Errorf("AutoParallelism(%d) = %d, want %d", c.nodes, got, c.want)
		}
	}
	// An Engine without Parallelism uses it, never more than the nodes.
	e := &Engine{}
	for _, c := range []struct{ nodes, want int }{{3, 3}, {5000, 1000}} {
		if got := e.parallelism(c.nodes); got != c.want {
			t.Errorf("Engine{}.parallelism(%d) = %d, want %d", c.nodes, got, c.want)
		}
	}
	if got := (&Engine{Parallelism: 7}).parallelism(5000); got != 7 {
		t.Errorf("an explicit parallelism of 7 became %d", got)
	}
}
