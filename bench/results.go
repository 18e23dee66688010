package bench

import (
	"time"

	"github.com/quorum-kv/quorum/rundir"
)

// Schema is the version of results.json. Fields are only added within a
// version; a change of meaning or a removal makes a new version.
const Schema = "quorum.bench/v1"

// File names in a run directory (package rundir spells them).
const (
	ResultsFile = rundir.ResultsFile
	ReportFile  = rundir.ReportFile
	PlotsDir    = rundir.PlotsDir
)

// ErrSchema is wrapped by LoadResults when a file is not a quorum.bench/v1
// results file.
var ErrSchema = rundir.ErrSchema

// Results is results.json: what ran (Run), the raw measurements (Load,
// Availability) and what Summarize derives from them (Summary). Durations
// are integers in nanoseconds (fields ending _ns).
type Results struct {
	Schema       string       `json:"schema"`
	Run          RunInfo      `json:"run"`
	Load         []LoadCell   `json:"load"`
	Availability []FaultTrial `json:"availability"`
	Summary      Summary      `json:"summary"`
	// Errors are harness problems that cut parts of the run short (a
	// cluster that did not start or recover), in the order they happened.
	Errors []string `json:"errors,omitempty"`
}

// RunInfo describes the run and the machine.
type RunInfo struct {
	Start   time.Time     `json:"start"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Command string        `json:"command,omitempty"`
	// Backend is where the clusters ran (cluster.Backend's name); empty in
	// runs from before it was recorded, which were all local.
	Backend  string   `json:"backend,omitempty"`
	Servers  []Server `json:"servers"`
	Settings Settings `json:"settings"`
	Machine  Machine  `json:"machine"`
}

// Settings are the Config fields that shape the figures.
type Settings struct {
	Sizes           []int         `json:"sizes"`
	Workloads       []string      `json:"workloads"`
	Clients         []int         `json:"clients"`
	Conns           int           `json:"conns"`
	Duration        time.Duration `json:"duration_ns"`
	Warmup          time.Duration `json:"warmup_ns"`
	KeySize         int           `json:"key_size"`
	ValueSize       int           `json:"value_size"`
	KeySpace        int           `json:"key_space"`
	OpTimeout       time.Duration `json:"op_timeout_ns"`
	Rounds          int           `json:"rounds"`
	Faults          []string      `json:"faults"`
	FaultReps       int           `json:"fault_reps"`
	FaultWait       time.Duration `json:"fault_wait_ns"`
	ProbeInterval   time.Duration `json:"probe_interval_ns"`
	ProbeTimeout    time.Duration `json:"probe_timeout_ns"`
	Seed            uint64        `json:"seed"`
	ElectionTimeout string        `json:"election_timeout"`
	// HeartbeatInterval ("server default" or a duration), SnapshotCount
	// (0: the server's default) and ServerArgs (appended to every member's
	// command line) are the members' other settings (absent in runs from
	// before them).
	HeartbeatInterval string   `json:"heartbeat_interval,omitempty"`
	SnapshotCount     int      `json:"snapshot_count,omitempty"`
	ServerArgs        []string `json:"server_args,omitempty"`
	// The watch and memory knobs (absent in runs from before them).
	Watchers       []int `json:"watchers,omitempty"`
	WatchConns     int   `json:"watch_conns,omitempty"`
	WatchPutRate   int   `json:"watch_put_rate,omitempty"`
	WatchEventRate int   `json:"watch_event_rate,omitempty"`
	IdleWatchers   []int `json:"idle_watchers,omitempty"`
	MemoryWatchers int   `json:"memory_watchers,omitempty"`
	MemoryLeases   int   `json:"memory_leases,omitempty"`
}

// Machine is where the run happened. The load generator runs on the same
// CPUs as the cluster: LoadGenCPU in each cell says how much it took.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	Note      string `json:"note"`
}

// Latency is a latency distribution's summary, from an HdrHistogram with
// microsecond resolution and 3 significant figures.
type Latency struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
	// CDF is the distribution at fixed quantiles (CDFQuantiles), for plots.
	CDF []CDFPoint `json:"cdf"`
}

// CDFPoint is the latency at quantile Q (0..1).
type CDFPoint struct {
	Q       float64       `json:"q"`
	Latency time.Duration `json:"latency_ns"`
}

// MemberUsage is one member's resource use during a cell's measured time.
type MemberUsage struct {
	Name string `json:"name"`
	// CPU is user+system time (/proc/PID/stat utime+stime) spent in the
	// measured time.
	CPU time.Duration `json:"cpu_ns"`
	// PeakRSS is VmHWM (/proc/PID/status) at the end of the cell, in bytes.
	// The engine resets it (clear_refs 5) before each cell when the kernel
	// allows, which PeakRSSReset says; otherwise it is the peak since start.
	PeakRSS      int64 `json:"peak_rss_bytes"`
	PeakRSSReset bool  `json:"peak_rss_reset"`
	// RSSBefore and RSSAfter are VmRSS (/proc/PID/status), in bytes, at
	// steady state before and after a memory cell created its objects
	// (watch-memory, lease-memory cells only).
	RSSBefore int64 `json:"rss_before_bytes,omitempty"`
	RSSAfter  int64 `json:"rss_after_bytes,omitempty"`
	// RSSAnonBefore and RSSAnonAfter are RssAnon, the anonymous part of
	// VmRSS (heap, stacks), without file pages mapped in (etcd's bbolt
	// database is an mmapped file, counted in VmRSS as it is touched).
	RSSAnonBefore int64 `json:"rss_anon_before_bytes,omitempty"`
	RSSAnonAfter  int64 `json:"rss_anon_after_bytes,omitempty"`
}

// LoadCell is one measured (server, round, size, workload, clients) cell.
type LoadCell struct {
	Server   string `json:"server"`
	Round    int    `json:"round"`
	Size     int    `json:"size"`
	Workload string `json:"workload"`
	Clients  int    `json:"clients"`
	Conns    int    `json:"conns"`
	// OK and Errors count requests invoked in the measured time.
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`
	// ErrorSample is one error's text when Errors > 0.
	ErrorSample string        `json:"error_sample,omitempty"`
	Measured    time.Duration `json:"measured_ns"`
	// Throughput is OK / Measured, in requests per second.
	Throughput float64       `json:"throughput"`
	Latency    Latency       `json:"latency"`
	Members    []MemberUsage `json:"members"`
	// LoadGenCPU is the benchmark process's own CPU time in the measured
	// time (it shares the machine with the cluster).
	LoadGenCPU time.Duration `json:"loadgen_cpu_ns"`
	// OtherCPU is the CPU time the rest of the machine used in the
	// measured time (/proc/stat's busy time less the members' and the
	// benchmark's), StealCPU the time the hypervisor gave the machine's
	// virtual CPUs to others. Both are noise: a cell where they are large
	// measured the neighbours as well as the servers.
	OtherCPU time.Duration `json:"other_cpu_ns,omitempty"`
	StealCPU time.Duration `json:"steal_cpu_ns,omitempty"`
	// RestMeasured says that OtherCPU and StealCPU were measured (false
	// where /proc/stat could not be read, and in runs from before them).
	RestMeasured bool `json:"rest_measured,omitempty"`
	// Watchers is the watcher count of a watch cell (Clients is 0; OK
	// counts the events received in the measured time, Throughput is
	// events/s summed over the watchers, Latency is put acknowledgement
	// to event, Errors counts failed puts) and of a watch-memory cell.
	Watchers int `json:"watchers,omitempty"`
	// IdleWatchers is the number of idle watchers held open during a
	// request-loop cell (on keys the workload never writes).
	IdleWatchers int `json:"idle_watchers,omitempty"`
	// IdleWatchEvents counts the events the idle watchers received (0
	// unless something wrote their keys).
	IdleWatchEvents int64 `json:"idle_watch_events,omitempty"`
	// Leases is the number of leases a lease-memory cell granted.
	Leases int `json:"leases,omitempty"`
	// Watch is the watch cell's detail.
	Watch *WatchStats `json:"watch,omitempty"`
	// Memory is a memory cell's detail (Throughput and Latency are then
	// those of creating the watchers or granting the leases).
	Memory *MemoryStats `json:"memory,omitempty"`
}

// WatchStats is what a watch cell measured besides events/s and latency.
type WatchStats struct {
	Conns int `json:"conns"`
	// PutRate is the offered put rate (puts/s); EventRate = PutRate x
	// watchers is the offered event rate.
	PutRate   float64 `json:"put_rate"`
	EventRate float64 `json:"event_rate"`
	// Puts and PutErrors count the puts of the whole cell (warm-up
	// included); PutsSkipped counts the puts not sent because 64 were
	// already in flight (the server fell behind the open-loop rate).
	Puts        int64 `json:"puts"`
	PutErrors   int64 `json:"put_errors"`
	PutsSkipped int64 `json:"puts_skipped,omitempty"`
	// PutLatency is the measured time's put latency.
	PutLatency Latency `json:"put_latency"`
	// Delivered counts every event received (warm-up and the drain after
	// the last put included); Expected = watchers x Puts. Missing sums,
	// over watchers, the acknowledged puts a watcher did not see once the
	// drain ended; Extra the events beyond Puts+PutErrors (a failed put
	// may still have been applied); Duplicates the events whose revision
	// was not above the watcher's previous one.
	Delivered  int64 `json:"delivered"`
	Expected   int64 `json:"expected"`
	Missing    int64 `json:"missing"`
	Extra      int64 `json:"extra"`
	Duplicates int64 `json:"duplicates"`
	// BeforeAck counts measured events received before their put's
	// acknowledgement was recorded (latency recorded as 0, as etcd's
	// watch-latency benchmark does).
	BeforeAck int64 `json:"before_ack"`
	// FromSend is the measured events' latency from their put's sending
	// (the put's invocation) instead of its acknowledgement: never
	// negative, so it still tells servers apart when most events beat the
	// acknowledgement.
	FromSend Latency `json:"from_send_latency"`
	// WatchErrors counts watchers that ended early (canceled, error);
	// WatchErrorSample is one of the reasons.
	WatchErrors      int64  `json:"watch_errors,omitempty"`
	WatchErrorSample string `json:"watch_error_sample,omitempty"`
	// Drain is the time from the last put's acknowledgement until every
	// watcher had its events (or the OpTimeout bound ran out).
	Drain time.Duration `json:"drain_ns"`
}

// MemoryStats is what a memory cell measured.
type MemoryStats struct {
	// Kind is "watchers" or "leases"; Objects how many were created.
	Kind    string `json:"kind"`
	Objects int    `json:"objects"`
	Errors  int64  `json:"errors"`
	// RSSDelta is the sum over members of RSSAfter-RSSBefore, in bytes;
	// MaxMemberDelta is the largest member's.
	RSSDelta       int64 `json:"rss_delta_bytes"`
	MaxMemberDelta int64 `json:"max_member_rss_delta_bytes"`
	// AnonDelta is the sum over members of RSSAnonAfter-RSSAnonBefore.
	AnonDelta int64 `json:"rss_anon_delta_bytes"`
	// Settled: every member's RSS stopped moving (less than 1% of its
	// delta, or 256 KiB, over 2 s) within MemorySettle.
	Settled bool `json:"settled"`
}

// FaultTrial is one repetition of one fault on one cluster.
type FaultTrial struct {
	Server string `json:"server"`
	Round  int    `json:"round"`
	Size   int    `json:"size"`
	Fault  string `json:"fault"`
	Rep    int    `json:"rep"`
	// Targets are the members killed or cut off; Lost = len(Targets) is
	// the number of members the majority side lost.
	Targets []string `json:"targets"`
	Lost    int      `json:"lost"`
	// Leader is the leader the fault was aimed at.
	Leader string `json:"leader"`
	// Start is when the fault began (wall clock), the origin of Window:
	// with it a window can be lined up against the members' logs.
	Start time.Time `json:"start"`
	// Writable: a write invoked after the fault was acknowledged within
	// FaultWait. Window is the time from the fault to that write's
	// acknowledgement (FaultWait when not writable).
	Writable bool          `json:"writable"`
	Window   time.Duration `json:"window_ns"`
	// PredictedWritable is Predict(Size, Lost).Writable.
	PredictedWritable bool `json:"predicted_writable"`
	// Recovered: after healing, every member was healthy and writes were
	// acknowledged within RecoveryTimeout. When not, RecoveryError says
	// why and the cluster was replaced by a fresh one for the next trial.
	Recovered     bool   `json:"recovered"`
	RecoveryError string `json:"recovery_error,omitempty"`
}

// WriteResults writes res as dir/results.json with Schema set, atomically.
func WriteResults(dir string, res Results) error {
	res.Schema = Schema
	return rundir.WriteResults(dir, res)
}

// LoadResults reads a results.json file (a path to the file, or to a run
// directory holding it). It wraps ErrSchema when the schema is not Schema.
func LoadResults(path string) (Results, error) {
	var res Results
	if err := rundir.LoadResults(path, Schema, &res); err != nil {
		return Results{}, err
	}
	return res, nil
}
