//go:build tools

// Package pin keeps the module's direct dependencies in go.mod while the
// packages that use them are being written. Delete an import here once real
// code imports the package.
package pin

import (
	_ "github.com/coreos/ignition/v2/config/v3_2"
	_ "github.com/openshift/api/machineconfiguration/v1"
	_ "github.com/openshift/client-go/machineconfiguration/clientset/versioned"
	_ "github.com/spf13/cobra"
	_ "k8s.io/cli-runtime/pkg/genericclioptions"
	_ "k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/cli-runtime/pkg/printers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/tools/remotecommand"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1"
	_ "sigs.k8s.io/yaml"
	_ "golang.org/x/term"
)
