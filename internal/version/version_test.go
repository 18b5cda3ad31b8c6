package version

import (
	"runtime"
	"testing"
)

// Under `go test` nothing is stamped and there is no module version, so Get
// must fall back to placeholders rather than print empty fields.
func TestGetFallbacks(t *testing.T) {
	info := Get()
	for name, v := range map[string]string{"Version": info.Version, "Commit": info.Commit, "Date": info.Date} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
	if info.GoVersion != runtime.Version() || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("runtime fields wrong: %+v", info)
	}
}
