//go:build tools

// This file is never built. It keeps github.com/containers/kubensmnt in
// go.mod (go mod tidy reads every build tag), because templates.go reads the
// module's kubens texts from the module cache instead of importing them: in
// v1.2.0, the version CRI-O v1.34 links and the one the Go proxy serves here,
// utils/systemd and utils/kubensenter use //go:embed without importing
// "embed" and do not compile (fixed upstream by "Add go embed test",
// 9264c5c, first tagged in v1.3.0). With v1.3.0 or later, import the two
// packages in templates.go and delete this file.

package mcosim

import (
	_ "github.com/containers/kubensmnt/utils/kubensenter"
	_ "github.com/containers/kubensmnt/utils/systemd"
)
