package wrap_test

import (
	"testing"

	"github.com/oc-kubens/oc-kubens/pkg/manifests"
	"github.com/oc-kubens/oc-kubens/pkg/wrap"
)

// TestDropInNameMatchesManifests: the MachineConfig must carry the drop-in
// under the name ParseSystemctlCat recognises as the wrapper's. The name
// is kept in both packages so that neither has to import the other.
func TestDropInNameMatchesManifests(t *testing.T) {
	if wrap.DropInName != manifests.WrapDropInName {
		t.Errorf("wrap.DropInName %q, manifests.WrapDropInName %q", wrap.DropInName, manifests.WrapDropInName)
	}
}
