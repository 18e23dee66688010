package checker

import (
	"encoding/json"
	"testing"
)

func TestVerdictTextExitCodeAndJSON(t *testing.T) {
	tests := []struct {
		v    Verdict
		text string
		exit int
	}{
		{Valid, "valid", 0},
		{Invalid, "invalid", 1},
		{Unknown, "unknown", 2},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if tt.v.String() != tt.text || tt.v.ExitCode() != tt.exit {
				t.Fatalf("String %q ExitCode %d, want %q %d", tt.v, tt.v.ExitCode(), tt.text, tt.exit)
			}
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != `"`+tt.text+`"` {
				t.Fatalf("JSON %s, %v", b, err)
			}
			var back Verdict = 42
			if err := json.Unmarshal(b, &back); err != nil || back != tt.v {
				t.Fatalf("unmarshal %s: %v, %v", b, back, err)
			}
		})
	}
}

func TestZeroVerdictIsUnknown(t *testing.T) {
	var v Verdict
	if v != Unknown || v.ExitCode() != 2 {
		t.Fatalf("zero verdict %v exit %d", v, v.ExitCode())
	}
}

func TestVerdictRejectsUnknownText(t *testing.T) {
	var v Verdict
	if err := json.Unmarshal([]byte(`"pass"`), &v); err == nil {
		t.Fatal("accepted \"pass\"")
	}
	if _, err := json.Marshal(Verdict(7)); err == nil {
		t.Fatal("marshalled an out-of-range verdict")
	}
}

func TestCombine(t *testing.T) {
	tests := []struct {
		name string
		in   []Verdict
		want Verdict
	}{
		{"nothing checked is unknown", nil, Unknown},
		{"all valid is valid", []Verdict{Valid, Valid}, Valid},
		{"any unknown is unknown", []Verdict{Valid, Unknown, Valid}, Unknown},
		{"any invalid wins over unknown", []Verdict{Unknown, Invalid, Valid}, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Combine(tt.in...); got != tt.want {
				t.Fatalf("Combine(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
