// Package bench is Quorum's capacity-planning and regression benchmark:
// throughput, latency and member resource use per cluster size and client
// count, write availability under faults per cluster size (the etcd docs'
// quorum table, measured), and A/B comparisons of several servers run
// interleaved in one run. Run starts clusters through a cluster.Backend
// (local processes, containers), injects the faults of package nemesis,
// drives a load generator on go.etcd.io/etcd/client/v3 and writes a run
// directory
// (results.json in the quorum.bench/v1 schema, report.html, plots/);
// Compare diffs two results.json files for regression gates in CI.
//
// The pure parts — summaries, per-round ratios and their spread, the quorum
// prediction, the comparison — are functions over Results, so a saved
// results.json can be re-reported and compared offline.
package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quorum-kv/quorum/cluster"
)

// Workload names.
const (
	// WorkloadPut: Put of a random key from the key space.
	WorkloadPut = "put"
	// WorkloadRangeLinearizable: linearizable Get of a random preloaded key.
	WorkloadRangeLinearizable = "range-linearizable"
	// WorkloadRangeSerializable: serializable Get of a random preloaded key.
	WorkloadRangeSerializable = "range-serializable"
	// WorkloadTxn: Txn If(mod_revision(k) > -1) Then(Put k) Else(Get k) —
	// always the Put branch, with a compare evaluated on every request.
	WorkloadTxn = "txn"
	// WorkloadMixed: half Puts, half linearizable Gets, chosen at random.
	WorkloadMixed = "mixed"
	// WorkloadWatch: for each count of Config.Watchers, that many
	// watchers of the whole key space (spread over WatchConns connections
	// pinned to the members) under an open-loop put load of WatchPutRate
	// puts/s (lowered so that watchers x rate <= WatchEventRate). Measures
	// events delivered per second summed over the watchers and each
	// event's latency from its put's acknowledgement (by revision).
	WorkloadWatch = "watch"
	// WorkloadWatchMemory: open MemoryWatchers idle watchers (one key
	// each, a range no put touches) and report each member's RSS before
	// and after, at steady state.
	WorkloadWatchMemory = "watch-memory"
	// WorkloadLeaseMemory: grant MemoryLeases leases (TTL 1 h, no keys)
	// and report each member's RSS before and after, at steady state.
	WorkloadLeaseMemory = "lease-memory"
)

// Workloads lists the workload names in documentation order.
func Workloads() []string {
	return []string{WorkloadPut, WorkloadRangeLinearizable, WorkloadRangeSerializable, WorkloadTxn, WorkloadMixed,
		WorkloadWatch, WorkloadWatchMemory, WorkloadLeaseMemory}
}

// clientWorkload reports whether w is a request-loop workload, run once
// per Clients count (and per IdleWatchers count).
func clientWorkload(w string) bool {
	return w != WorkloadWatch && w != WorkloadWatchMemory && w != WorkloadLeaseMemory
}

// needsPreload reports whether w reads keys that must exist.
func needsPreload(w string) bool {
	return w == WorkloadRangeLinearizable || w == WorkloadRangeSerializable || w == WorkloadTxn || w == WorkloadMixed
}

// Server is one server under test: its Label names it in results and
// reports ("quorumd", "etcd"), its Binary (or, on container backends, its
// Image) is what the members run.
type Server = cluster.Server

// ParseServer reads --server-binary's "LABEL=PATH" or "PATH" (the label is
// then the file's base name).
func ParseServer(s string) (Server, error) {
	label, path, ok := strings.Cut(s, "=")
	if !ok {
		path, label = s, filepath.Base(s)
	}
	if label == "" || path == "" {
		return Server{}, fmt.Errorf("server %q: want LABEL=PATH or PATH", s)
	}
	return Server{Label: label, Binary: path}, nil
}

// Config configures a benchmark run. Build one from DefaultConfig; the
// command line maps its flags onto it in cmd/quorum.
type Config struct {
	// Servers are benchmarked interleaved, in this order, each round; the
	// first is the baseline of the ratios (ratio = other / first).
	Servers []Server
	// Sizes are the cluster sizes (members), in run order.
	Sizes []int
	// Workloads are the load shapes (Workloads()), each run per client count.
	Workloads []string
	// Clients are the client counts: concurrent request loops.
	Clients []int
	// Conns is the number of gRPC connections the clients share; 0 means
	// min(100, clients) for each client count (etcd's benchmark shape).
	Conns int
	// Duration is the measured time of each (size, workload, clients) cell.
	Duration time.Duration
	// Warmup runs load before each cell's measured time, not recorded.
	Warmup time.Duration
	// KeySize and ValueSize are the sizes of keys and values in bytes.
	KeySize, ValueSize int
	// KeySpace is the number of distinct keys; read, txn and mixed
	// workloads preload all of them once per cluster.
	KeySpace int
	// OpTimeout bounds every load request; a timed-out request is an error.
	OpTimeout time.Duration
	// Rounds is how many times each server runs everything, interleaved
	// (A, B, A, B, ...) per cluster size.
	Rounds int
	// Faults are the availability faults (FaultNames(), or any nemesis
	// name); empty skips the availability part.
	Faults []string
	// FaultReps is how many times each fault is repeated per round.
	FaultReps int
	// FaultWait is the bounded wait for a write after a fault: no
	// acknowledged write within it means "not writable".
	FaultWait time.Duration
	// ProbeInterval is the spacing of the availability write probes (an
	// open-loop write load, round-robin over the members); it is the
	// resolution of the unavailability windows.
	ProbeInterval time.Duration
	// ProbeTimeout bounds each probe write.
	ProbeTimeout time.Duration
	// RecoveryTimeout bounds the wait for a healthy cluster after healing.
	RecoveryTimeout time.Duration
	// Store holds the runs: Store/bench/<timestamp>/, Store/latest.
	Store string
	// Seed seeds every random choice: keys, values, the mixed workload's
	// choices, the faults' targets and the backend's (ports, jitter).
	Seed uint64
	// Command is the command line, recorded in results.json.
	Command string
	// Now is the wall clock for run timestamps (latencies use the
	// monotonic clock of time.Now: they are measurements).
	Now func() time.Time
	// Logger receives the engine's events.
	Logger *slog.Logger
	// Progress, when set, shows what runs and what remains (a progress bar
	// on a terminal, lines elsewhere).
	Progress io.Writer
	// Watchers are the watcher counts of the watch workload, one cell each.
	Watchers []int
	// WatchConns is the number of gRPC connections (clientv3 clients, one
	// watch stream each) the watchers of a watch or watch-memory cell, and
	// the idle watchers of a load cell, are spread over, connection i
	// pinned to member i mod N; 0 means min(watchers, 10).
	WatchConns int
	// WatchPutRate is the watch workload's put rate (puts/s, open loop).
	WatchPutRate int
	// WatchEventRate caps the events offered per second in a watch cell:
	// the put rate is min(WatchPutRate, WatchEventRate/watchers); 0 means
	// no cap.
	WatchEventRate int
	// IdleWatchers are the counts of idle watchers held open during each
	// request-loop cell (one cell per count; 0 = none): each watches its
	// own key in a range the workload never writes, so it costs the
	// server matching and memory but receives no events. The cells run
	// in this order in odd rounds and in the reverse order in even ones.
	IdleWatchers []int
	// MemoryWatchers and MemoryLeases are the objects the watch-memory and
	// lease-memory cells create.
	MemoryWatchers, MemoryLeases int
	// MemorySettle bounds the wait for the members' RSS to settle after a
	// memory cell created its objects (and before, for the baseline).
	MemorySettle time.Duration
	// Members are the members' flags and environment on every cluster
	// (extra server flags, timing), whatever the backend.
	Members cluster.MemberSettings
}

// DefaultConfig is the default run: sizes 1,3,5,7, put with 1, 100 and
// 1000 clients, 10 s per cell after 1 s of warm-up, 8-byte keys and
// 256-byte values, one round, every fault three times with a 10 s bound.
// Servers and Store must still be set.
func DefaultConfig() Config {
	return Config{
		Sizes:           []int{1, 3, 5, 7},
		Workloads:       []string{WorkloadPut},
		Clients:         []int{1, 100, 1000},
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		KeySize:         8,
		ValueSize:       256,
		KeySpace:        1000,
		OpTimeout:       5 * time.Second,
		Rounds:          1,
		Faults:          FaultNames(),
		FaultReps:       3,
		FaultWait:       10 * time.Second,
		ProbeInterval:   10 * time.Millisecond,
		ProbeTimeout:    2 * time.Second,
		RecoveryTimeout: 20 * time.Second,
		Store:           "store",
		Watchers:        []int{1, 100, 10000},
		WatchPutRate:    100,
		WatchEventRate:  100000,
		IdleWatchers:    []int{0},
		MemoryWatchers:  10000,
		MemoryLeases:    100000,
		MemorySettle:    10 * time.Second,
		Seed:            1,
		Now:             time.Now,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	if len(c.Servers) == 0 {
		return errors.New("bench config: Servers is empty")
	}
	labels := map[string]bool{}
	for i, s := range c.Servers {
		if s.Label == "" || (s.Binary == "" && s.Image == "") {
			return fmt.Errorf("bench config: Servers[%d] needs a Label and a Binary (or an Image)", i)
		}
		if labels[s.Label] {
			return fmt.Errorf("bench config: Servers: label %q used twice", s.Label)
		}
		labels[s.Label] = true
	}
	if len(c.Sizes) == 0 {
		return errors.New("bench config: Sizes is empty")
	}
	for _, n := range c.Sizes {
		if n < 1 || n > 15 {
			return fmt.Errorf("bench config: Sizes: %d is not in 1..15", n)
		}
	}
	if len(c.Workloads) == 0 {
		return errors.New("bench config: Workloads is empty")
	}
	for _, w := range c.Workloads {
		if !slices.Contains(Workloads(), w) {
			return fmt.Errorf("bench config: Workloads: unknown workload %q (want %s)", w, strings.Join(Workloads(), ", "))
		}
	}
	if len(c.Clients) == 0 {
		return errors.New("bench config: Clients is empty")
	}
	for _, n := range c.Clients {
		if n < 1 || n > 100000 {
			return fmt.Errorf("bench config: Clients: %d is not in 1..100000", n)
		}
	}
	for _, n := range c.Watchers {
		if n < 1 || n > 1000000 {
			return fmt.Errorf("bench config: Watchers: %d is not in 1..1000000", n)
		}
	}
	if slices.Contains(c.Workloads, WorkloadWatch) && len(c.Watchers) == 0 {
		return errors.New("bench config: Watchers is empty but the watch workload is selected")
	}
	if len(c.IdleWatchers) == 0 {
		return errors.New("bench config: IdleWatchers is empty (want 0 for none)")
	}
	for _, n := range c.IdleWatchers {
		if n < 0 || n > 1000000 {
			return fmt.Errorf("bench config: IdleWatchers: %d is not in 0..1000000", n)
		}
	}
	for _, f := range c.Faults {
		if err := checkFault(f); err != nil {
			return fmt.Errorf("bench config: Faults: %w", err)
		}
	}
	switch {
	case c.Conns < 0:
		return fmt.Errorf("bench config: Conns %d < 0", c.Conns)
	case c.Duration <= 0:
		return fmt.Errorf("bench config: Duration %v must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("bench config: Warmup %v < 0", c.Warmup)
	case c.KeySize < 1 || c.KeySize > 1<<16:
		return fmt.Errorf("bench config: KeySize %d is not in 1..65536", c.KeySize)
	case c.ValueSize < 0 || c.ValueSize > 1<<20:
		return fmt.Errorf("bench config: ValueSize %d is not in 0..1048576", c.ValueSize)
	case c.KeySpace < 1:
		return fmt.Errorf("bench config: KeySpace %d < 1", c.KeySpace)
	case c.KeySize < 8 && c.KeySpace > 1<<(8*c.KeySize):
		return fmt.Errorf("bench config: KeySpace %d does not fit in KeySize %d bytes", c.KeySpace, c.KeySize)
	case c.OpTimeout <= 0:
		return fmt.Errorf("bench config: OpTimeout %v must be positive", c.OpTimeout)
	case c.Rounds < 1:
		return fmt.Errorf("bench config: Rounds %d < 1", c.Rounds)
	case c.FaultReps < 0:
		return fmt.Errorf("bench config: FaultReps %d < 0", c.FaultReps)
	case c.FaultWait <= 0:
		return fmt.Errorf("bench config: FaultWait %v must be positive", c.FaultWait)
	case c.ProbeInterval <= 0:
		return fmt.Errorf("bench config: ProbeInterval %v must be positive", c.ProbeInterval)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("bench config: ProbeTimeout %v must be positive", c.ProbeTimeout)
	case c.RecoveryTimeout <= 0:
		return fmt.Errorf("bench config: RecoveryTimeout %v must be positive", c.RecoveryTimeout)
	case c.WatchConns < 0:
		return fmt.Errorf("bench config: WatchConns %d < 0", c.WatchConns)
	case c.WatchPutRate < 1 || c.WatchPutRate > maxWatchPutRate:
		return fmt.Errorf("bench config: WatchPutRate %d is not in 1..%d", c.WatchPutRate, maxWatchPutRate)
	case c.WatchEventRate < 0:
		return fmt.Errorf("bench config: WatchEventRate %d < 0", c.WatchEventRate)
	case c.MemoryWatchers < 1 || c.MemoryWatchers > 1000000:
		return fmt.Errorf("bench config: MemoryWatchers %d is not in 1..1000000", c.MemoryWatchers)
	case c.MemoryLeases < 1 || c.MemoryLeases > 10000000:
		return fmt.Errorf("bench config: MemoryLeases %d is not in 1..10000000", c.MemoryLeases)
	case c.MemorySettle < 0:
		return fmt.Errorf("bench config: MemorySettle %v < 0", c.MemorySettle)
	case c.Store == "":
		return errors.New("bench config: Store is empty")
	case c.Now == nil:
		return errors.New("bench config: Now is nil")
	case c.Logger == nil:
		return errors.New("bench config: Logger is nil")
	}
	return nil
}

// connsFor is the number of connections clients share.
func (c Config) connsFor(clients int) int {
	n := c.Conns
	if n == 0 {
		n = 100
	}
	return max(1, min(n, clients))
}

// watchConnsFor is the number of connections watchers are spread over.
func (c Config) watchConnsFor(watchers int) int {
	n := c.WatchConns
	if n == 0 {
		n = 10
	}
	return max(1, min(n, watchers))
}

// watchPutRate is the put rate of a watch cell with watchers watchers.
func (c Config) watchPutRate(watchers int) float64 {
	r := float64(c.WatchPutRate)
	if c.WatchEventRate > 0 {
		r = min(r, float64(c.WatchEventRate)/float64(watchers))
	}
	return r
}
