package main

import (
	"context"

	"github.com/oc-kubens/oc-kubens/test/harness"
)

// startAddons starts what runs beside the cluster in the same daemon, and
// returns the function that stops it. This is the hook for the simulated
// Machine Config Operator (test/mcosim): once wired, the daemon's cluster
// behaves like OpenShift when the plugin creates MachineConfigs. The wiring
// is one call, with the cluster as the Rebooter of its real nodes:
//
//	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{Logf: logf})
//	if err != nil { return nil, err }
//	return mco.Stop, nil
func startAddons(ctx context.Context, c *harness.Cluster, logf func(string, ...any)) (stop func(), err error) {
	_, _, _ = ctx, c, logf
	return func() {}, nil
}
