// Package apiretry tells the errors of an API server that is away for a
// moment from its answers, for the engines that retry across a restart.
package apiretry

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Transient reports whether err means the API server could not be reached
// or could not serve the request for now (a restart, a failover behind its
// load balancer, overload), rather than that it refused the request: the
// same request may succeed when tried again.
func Transient(err error) bool {
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err)
}
