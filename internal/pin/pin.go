//go:build tools

// Package pin keeps the module's direct dependencies in go.mod while the
// packages that use them are being written. Delete an import here once real
// code imports the package.
package pin

import (
	_ "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	_ "golang.org/x/term"
	_ "k8s.io/cli-runtime/pkg/printers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/remotecommand"
)
