//go:build bugzoo

package bugzoo

import "testing"

func TestSetPlantsOneBug(t *testing.T) {
	defer Set("")
	if err := Set("no-such-bug"); err == nil {
		t.Fatal("Set accepted an unknown bug")
	}
	if err := Set(string(StaleRead)); err != nil {
		t.Fatal(err)
	}
	for _, b := range All {
		if Enabled(b) != (b == StaleRead) {
			t.Errorf("Enabled(%s) = %v with %s planted", b, Enabled(b), StaleRead)
		}
	}
}
