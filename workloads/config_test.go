package workloads

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 10 || c.Keys != 8 || c.Timeout != 2*time.Second || c.KeyPrefix != "/quorum/" ||
		c.Mix != (Mix{0.5, 0.25, 0.25}) || c.ReadConsistency != Linearizable || c.Workload != WorkloadRegister {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestValidateNamesTheBadField(t *testing.T) {
	tests := []struct {
		field string
		mod   func(c *Config)
	}{
		{"Workload", func(c *Config) { c.Workload = "bank" }},
		{"Concurrency", func(c *Config) { c.Concurrency = 0 }},
		{"Rate", func(c *Config) { c.Rate = -1 }},
		{"Rate", func(c *Config) { c.Rate = math.Inf(1) }},
		{"Keys", func(c *Config) { c.Keys = 0 }},
		{"Mix", func(c *Config) { c.Mix = Mix{} }},
		{"Mix", func(c *Config) { c.Mix = Mix{Read: 1, Write: -0.5} }},
		{"Mix", func(c *Config) { c.Mix = Mix{Read: math.NaN()} }},
		{"ReadConsistency", func(c *Config) { c.ReadConsistency = "quorum" }},
		{"Timeout", func(c *Config) { c.Timeout = 0 }},
		{"MaxOps", func(c *Config) { c.MaxOps = -1 }},
		{"KeyPrefix", func(c *Config) { c.KeyPrefix = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.field)
			}
			if n := strings.Count(err.Error(), "workload config:"); n != 1 {
				t.Fatalf("Validate() = %v: want exactly one bad field, got %d", err, n)
			}
		})
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	c := DefaultConfig()
	c.Keys, c.Timeout = -1, -1
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "Keys:") || !strings.Contains(err.Error(), "Timeout:") {
		t.Fatalf("Validate() = %v, want Keys and Timeout named", err)
	}
}

func TestOpsBoundIsMaxOpsElseDerivedFromRateElseDefault(t *testing.T) {
	tests := []struct {
		name   string
		maxOps int
		rate   float64
		d      time.Duration
		want   int
	}{
		{"explicit", 50, 100, time.Minute, 50},
		{"rate and deadline", 0, 100, 2 * time.Second, 200 + 10},
		{"rate without deadline", 0, 100, 0, DefaultMaxOps},
		{"unlimited rate", 0, 0, time.Second, DefaultMaxOps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.MaxOps, c.Rate = tt.maxOps, tt.rate
			if got := c.OpsBound(tt.d); got != tt.want {
				t.Fatalf("OpsBound(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}
