package change

import (
	"context"
	"maps"
	"slices"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/mcp"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

// WrapTarget is one role's wrap MachineConfig: what it holds now and what
// it will hold.
type WrapTarget struct {
	Role string
	Have *mcfgv1.MachineConfig // nil when it does not exist
	// Before and After map unit -> drop-in text.
	Before, After map[string]string
	Added         []string // units newly wrapped
	Changed       []string // units whose command changes
	Removed       []string // units unwrapped
}

// WrapTargets reads the wrap config of each role. A same-name object that
// is not ours is a *ForeignError.
func WrapTargets(snap mcp.Snapshot, roles []string) ([]*WrapTarget, error) {
	existing := mcsByName(snap.MachineConfigs)
	targets := make([]*WrapTarget, 0, len(roles))
	for _, role := range roles {
		t := &WrapTarget{Role: role, Have: existing[manifests.WrapName(role)], Before: map[string]string{}}
		if t.Have != nil {
			if !manifests.IsManagedWrap(t.Have) {
				return nil, &ForeignError{Existing: t.Have}
			}
			cfg, err := manifests.ParseConfig(t.Have.Spec.Config.Raw)
			if err != nil {
				return nil, &UnreadableError{Name: t.Have.Name, Err: err}
			}
			t.Before = manifests.WrapDropIns(cfg)
		}
		t.After = maps.Clone(t.Before)
		targets = append(targets, t)
	}
	return targets, nil
}

// Unwrap removes the units from each target; a unit wrapped by none of
// them is a *NotWrappedError.
func Unwrap(targets []*WrapTarget, units []string) error {
	for _, u := range units {
		found := false
		for _, t := range targets {
			if _, ok := t.After[u]; ok {
				delete(t.After, u)
				t.Removed = append(t.Removed, u)
				found = true
			}
		}
		if !found {
			roles := make([]string, 0, len(targets))
			for _, t := range targets {
				roles = append(roles, t.Role)
			}
			return &NotWrappedError{Unit: u, Roles: roles}
		}
	}
	return nil
}

// UnitReader reads units on nodes (a short-lived pod per node); the result
// is keyed by node name.
type UnitReader func(ctx context.Context, nodes []corev1.Node, units []string) (map[string]wrap.NodeUnits, error)

// WrapRequest is what wrap is asked for.
type WrapRequest struct {
	Units []string
	// ExecStart gives a unit's command instead of reading it on the nodes.
	ExecStart map[string]string
	// Read reads the units the nodes must tell.
	Read UnitReader
}

// Wrap decides each target's units: a unit already in the target stays as
// it is (unless ExecStart changes its command), the others get the command
// ExecStart gives or the one read from the nodes the target reaches. What
// stops a unit from being wrapped comes back as problems, all of them, and
// nothing in the targets is to be applied then.
func Wrap(ctx context.Context, snap mcp.Snapshot, targets []*WrapTarget, req WrapRequest) ([]UnitProblem, error) {
	poolOf := map[string]string{} // node -> pool
	for i := range snap.Nodes {
		if p, err := mcp.PoolForNode(snap.Pools, &snap.Nodes[i]); err == nil && p != "" {
			poolOf[snap.Nodes[i].Name] = p
		}
	}
	nodesOf := map[string][]string{} // role -> node names
	toRead := map[string]bool{}
	for _, t := range targets {
		probe := &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: manifests.WrapName(t.Role), Labels: map[string]string{manifests.RoleLabel: t.Role}}}
		reach, err := mcp.Reach(snap.Pools, []*mcfgv1.MachineConfig{probe})
		if err != nil {
			return nil, err
		}
		for _, n := range slices.Sorted(maps.Keys(poolOf)) {
			if _, ok := reach[poolOf[n]]; ok {
				nodesOf[t.Role] = append(nodesOf[t.Role], n)
			}
		}
		for _, u := range req.Units {
			_, given := req.ExecStart[u]
			if _, had := t.Before[u]; !given && !had {
				toRead[u] = true
			}
		}
	}
	reads := map[string]wrap.NodeUnits{}
	if len(toRead) > 0 {
		want := map[string]bool{}
		for _, ns := range nodesOf {
			for _, n := range ns {
				want[n] = true
			}
		}
		var nodes []corev1.Node
		for i := range snap.Nodes {
			if want[snap.Nodes[i].Name] {
				nodes = append(nodes, snap.Nodes[i])
			}
		}
		if len(nodes) > 0 {
			var err error
			if reads, err = req.Read(ctx, nodes, slices.Sorted(maps.Keys(toRead))); err != nil {
				return nil, err
			}
		}
	}
	var problems []UnitProblem
	for _, t := range targets {
		for _, u := range req.Units {
			var cmds []string
			if c, given := req.ExecStart[u]; given {
				cmds = []string{c}
			} else if _, ok := t.Before[u]; ok {
				continue // already wrapped by this config: unchanged
			} else {
				var probs []UnitProblem
				cmds, probs = CommandsFromNodes(u, t.Role, nodesOf[t.Role], poolOf, reads)
				if len(probs) > 0 {
					problems = append(problems, probs...)
					continue
				}
			}
			text, err := wrap.DropIn(u, cmds)
			if err != nil {
				problems = append(problems, UnitProblem{Unit: u, Role: t.Role, Kind: BadCommand, Detail: err.Error()})
				continue
			}
			old, had := t.Before[u]
			switch {
			case !had:
				t.Added = append(t.Added, u)
			case old != text:
				t.Changed = append(t.Changed, u)
			}
			t.After[u] = text
		}
	}
	return problems, nil
}

// ProblemKind says why a unit cannot be wrapped from what its nodes said.
type ProblemKind string

// Why a unit cannot be wrapped.
const (
	NoNodes        ProblemKind = "NoNodes"        // no node of the role to read it from
	Unreadable     ProblemKind = "Unreadable"     // its ExecStart could not be parsed on Nodes[0]
	AlreadyWrapped ProblemKind = "AlreadyWrapped" // wrapped on Nodes[0] by Detail
	NotRoot        ProblemKind = "NotRoot"        // runs as User=Detail on Nodes[0]
	Missing        ProblemKind = "Missing"        // not installed on Nodes
	NotRead        ProblemKind = "NotRead"        // Nodes (with Detail per node) could not be read
	Disagree       ProblemKind = "Disagree"       // the nodes' ExecStart differ: Commands
	NoRead         ProblemKind = "NoRead"         // no node could be read at all
	BadCommand     ProblemKind = "BadCommand"     // the drop-in cannot be made: Detail
)

// UnitProblem is one reason a unit cannot be wrapped for a role.
type UnitProblem struct {
	Unit, Role string
	Kind       ProblemKind
	// Nodes concerned, "name (why)" for NotRead; PoolOf names their pools.
	Nodes  []string
	PoolOf map[string]string
	Detail string
	// Commands maps each distinct ExecStart (lines joined by "\n") to the
	// nodes that have it, for Disagree.
	Commands map[string][]string
}

// CommandsFromNodes decides one unit's commands for the wrap config of a
// role from what the nodes it reaches said, or returns why it cannot: every
// node must have been read, have the unit, not have it wrapped already, and
// agree on its ExecStart.
func CommandsFromNodes(unit, role string, nodes []string, poolOf map[string]string, reads map[string]wrap.NodeUnits) ([]string, []UnitProblem) {
	problem := func(k ProblemKind, nodes []string, detail string) UnitProblem {
		return UnitProblem{Unit: unit, Role: role, Kind: k, Nodes: nodes, PoolOf: poolOf, Detail: detail}
	}
	if len(nodes) == 0 {
		return nil, []UnitProblem{problem(NoNodes, nil, "")}
	}
	var problems []UnitProblem
	var unread, missing []string
	byCmd := map[string][]string{} // joined commands -> nodes
	cmdsOf := map[string][]string{}
	for _, n := range nodes {
		r, ok := reads[n]
		if !ok || r.Reason != "" {
			why := "not read"
			if ok {
				why = r.Reason + ": " + r.Message
			}
			unread = append(unread, n+" ("+why+")")
			continue
		}
		u := r.Units[unit]
		switch {
		case u.Status == wrap.StatusMissing:
			missing = append(missing, n)
		case u.Status != wrap.StatusOK:
			unread = append(unread, n+" ("+string(u.Status)+")")
		case u.Err != nil:
			problems = append(problems, problem(Unreadable, []string{n}, u.Err.Error()))
		case u.Unit.WrappedBy != "":
			problems = append(problems, problem(AlreadyWrapped, []string{n}, u.Unit.WrappedBy))
		case !u.Unit.RunsAsRoot():
			problems = append(problems, problem(NotRoot, []string{n}, u.Unit.User))
		default:
			key := strings.Join(u.Unit.ExecStart, "\n")
			byCmd[key] = append(byCmd[key], n)
			cmdsOf[key] = u.Unit.ExecStart
		}
	}
	if len(missing) > 0 {
		problems = append(problems, problem(Missing, missing, ""))
	}
	if len(unread) > 0 {
		problems = append(problems, problem(NotRead, unread, ""))
	}
	if len(byCmd) > 1 {
		p := problem(Disagree, nil, "")
		p.Commands = byCmd
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	for k := range byCmd {
		return cmdsOf[k], nil
	}
	return nil, []UnitProblem{problem(NoRead, nil, "")}
}

// PlanWrap turns the targets into a plan with one change per target (in
// the targets' order) and the forecast of every pool a changed config
// reaches.
func PlanWrap(snap mcp.Snapshot, targets []*WrapTarget, unwrap bool) (*Plan, error) {
	plan := &Plan{Verb: VerbWrap, SingleNode: singleNode(snap.Pools), Wrap: targets}
	if unwrap {
		plan.Verb = VerbUnwrap
	}
	reach := map[string][]string{}
	for _, t := range targets {
		ch := Change{Name: manifests.WrapName(t.Role), Have: t.Have}
		switch {
		case len(t.After) == 0 && t.Have == nil:
			ch.Action = Unchanged
		case len(t.After) == 0:
			ch.Action = Delete
		default:
			mc, err := manifests.RenderWrap(t.Role, t.After)
			if err != nil {
				return nil, err
			}
			// WrapTargets refused a same-name object that is not ours.
			ch.Want, ch.Action = mc, compareMC(t.Have, mc)
		}
		plan.Changes = append(plan.Changes, ch)
		if ch.Action == Unchanged {
			continue
		}
		obj := ch.Want
		if obj == nil {
			obj = t.Have
		}
		r, err := mcp.Reach(snap.Pools, []*mcfgv1.MachineConfig{obj})
		if err != nil {
			return nil, err
		}
		for p, mcs := range r {
			reach[p] = append(reach[p], mcs...)
		}
	}
	plan.Pools = newPoolPlans(snap.Pools, reach, snap.MachineConfigs, afterChanges(snap.MachineConfigs, plan.Changes))
	return plan, nil
}

// NotWrappedError: unwrap was asked for a unit that no wrap config of the
// roles wraps.
type NotWrappedError struct {
	Unit  string
	Roles []string
}

func (e *NotWrappedError) Error() string {
	return e.Unit + " is not wrapped by a wrap MachineConfig of role " + strings.Join(e.Roles, ", ")
}

// UnreadableError: one of our configs holds an Ignition config that cannot
// be read.
type UnreadableError struct {
	Name string
	Err  error
}

func (e *UnreadableError) Error() string {
	return "reading MachineConfig " + e.Name + ": " + e.Err.Error()
}
func (e *UnreadableError) Unwrap() error { return e.Err }
