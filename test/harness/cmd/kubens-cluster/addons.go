package main

import (
	"context"

	"github.com/oc-kubens/oc-kubens/test/harness"
	"github.com/oc-kubens/oc-kubens/test/mcosim"
)

// startAddons starts what runs beside the cluster in the same daemon, and
// returns the function that stops it: the simulated Machine Config Operator
// (test/mcosim), with the cluster as the Rebooter of its real nodes, so the
// cluster behaves like OpenShift when the plugin creates MachineConfigs
// (render after 5s as the real one, then a rolling reboot of the pool into
// or out of encapsulation).
func startAddons(ctx context.Context, c *harness.Cluster, logf func(string, ...any)) (stop func(), err error) {
	mco, err := mcosim.Start(ctx, c.RESTConfig(), c, mcosim.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	return mco.Stop, nil
}
