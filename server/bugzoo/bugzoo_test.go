package bugzoo

import "testing"

// A normal build plants nothing, whatever is asked.
func TestNormalBuildHasNoBugs(t *testing.T) {
	if Built {
		t.Skip("a -tags bugzoo build")
	}
	for _, b := range All {
		if Enabled(b) {
			t.Errorf("%s is enabled in a normal build", b)
		}
	}
}

func TestEveryBugIsKnownOnce(t *testing.T) {
	seen := map[Bug]bool{}
	for _, b := range All {
		if seen[b] || !Known(string(b)) {
			t.Errorf("%s listed twice or not known", b)
		}
		seen[b] = true
	}
	if Known("no-such-bug") {
		t.Error("an unknown name is known")
	}
}
