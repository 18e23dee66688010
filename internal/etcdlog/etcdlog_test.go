package etcdlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// keysInOrder returns the top-level keys of a JSON object line, in order.
func keysInOrder(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("line is not a JSON object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
	}
	return keys
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("line is not JSON: %s: %v", line, err)
	}
	return m
}

// nextLine returns the "dir/file.go:line" of its caller's next line, as etcd's
// ShortCallerEncoder writes it.
func nextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("etcdlog/%s:%d", file[strings.LastIndex(file, "/")+1:], line+1)
}

func TestSlogWritesEtcdLineShape(t *testing.T) {
	var buf bytes.Buffer
	lg := Default(&buf)
	caller := nextLine()
	lg.Info("published local member to cluster through raft",
		"local-member-id", "8e9e05c52164694d", "publish-timeout", 7*time.Second, "urls", []string{"http://127.0.0.1:2379"})
	line := bytes.TrimSpace(buf.Bytes())

	want := []string{"level", "ts", "caller", "msg", "local-member-id", "publish-timeout", "urls"}
	if got := keysInOrder(t, line); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v: %s", got, want, line)
	}
	m := decode(t, line)
	if m["level"] != "info" {
		t.Errorf("level %v, want info", m["level"])
	}
	if m["caller"] != caller {
		t.Errorf("caller %v, want %v", m["caller"], caller)
	}
	if m["publish-timeout"] != "7s" {
		t.Errorf("publish-timeout %v, want \"7s\" (zap's string duration)", m["publish-timeout"])
	}
	if u, ok := m["urls"].([]any); !ok || len(u) != 1 || u[0] != "http://127.0.0.1:2379" {
		t.Errorf("urls %v, want a JSON array of strings", m["urls"])
	}
	if ts, _ := m["ts"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d{4})$`).MatchString(ts) {
		t.Errorf("ts %q is not etcd's 2006-01-02T15:04:05.000000Z0700", ts)
	}
}

// The line must be byte-for-byte what etcd's own zap logger writes for the
// same entry, apart from ts and caller.
func TestSlogMatchesEtcdZapLogger(t *testing.T) {
	var ours, theirs bytes.Buffer
	Default(&ours).Warn("leadership transfer failed", "local-member-id", "8e9e05c52164694d",
		"took", 1500*time.Millisecond, "error", errors.New("etcdserver: request timed out"))
	New(&theirs, zapcore.InfoLevel).Sugar().Warnw("leadership transfer failed", "local-member-id", "8e9e05c52164694d",
		"took", 1500*time.Millisecond, "error", errors.New("etcdserver: request timed out"))
	strip := regexp.MustCompile(`"(ts|caller)":"[^"]*",`)
	a, b := strip.ReplaceAllString(ours.String(), ""), strip.ReplaceAllString(theirs.String(), "")
	if a != b {
		t.Fatalf("ours:   %s\ntheirs: %s", a, b)
	}
	if cfg := logutil.DefaultZapLoggerConfig; cfg.Encoding != "json" || cfg.EncoderConfig.TimeKey != "ts" {
		t.Fatalf("etcd's default logger config changed: %+v", cfg)
	}
}

func TestLevelsAreZapNames(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "debug"}, {slog.LevelInfo, "info"}, {slog.LevelWarn, "warn"},
		{slog.LevelError, "error"}, {LevelPanic, "panic"}, {LevelFatal, "fatal"},
	} {
		var buf bytes.Buffer
		Slog(New(&buf, zapcore.DebugLevel)).Log(t.Context(), tc.level, "m")
		if got := decode(t, buf.Bytes())["level"]; got != tc.want {
			t.Errorf("slog level %v: level %v, want %q", tc.level, got, tc.want)
		}
	}
}

func TestLevelFiltersAsZap(t *testing.T) {
	var buf bytes.Buffer
	lg := Slog(New(&buf, zapcore.WarnLevel))
	lg.Info("dropped")
	lg.Warn("kept")
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), "kept") {
		t.Fatalf("at warn, got %q", buf.String())
	}
}

func TestErrorLineHasStacktraceFromCallSite(t *testing.T) {
	var buf bytes.Buffer
	Default(&buf).Error("setting up serving from embedded etcd failed.", "error", io.EOF)
	line := bytes.TrimSpace(buf.Bytes())
	want := []string{"level", "ts", "caller", "msg", "error", "stacktrace"}
	if got := keysInOrder(t, line); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	m := decode(t, line)
	st, _ := m["stacktrace"].(string)
	if first, _, _ := strings.Cut(st, "\n"); !strings.HasSuffix(first, "TestErrorLineHasStacktraceFromCallSite") {
		t.Errorf("stacktrace starts at %q, want the test function", first)
	}
	if m["error"] != "EOF" {
		t.Errorf("error %v, want EOF", m["error"])
	}
}

func TestNamedAndWithKeepOrder(t *testing.T) {
	var buf bytes.Buffer
	lg := Named(Default(&buf), "raft").With("local-member-id", "1")
	lg.Info("became leader at term 2", "term", 2)
	line := bytes.TrimSpace(buf.Bytes())
	want := []string{"level", "ts", "logger", "caller", "msg", "local-member-id", "term"}
	if got := keysInOrder(t, line); !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v: %s", got, want, line)
	}
	if got := decode(t, line)["logger"]; got != "raft" {
		t.Errorf("logger %v, want raft", got)
	}
}

func TestGroups(t *testing.T) {
	var buf bytes.Buffer
	lg := Default(&buf).WithGroup("empty")
	lg.Info("no fields")
	lg.WithGroup("g").Info("one", "a", 1, slog.Group("h", "b", "x"))
	sc := bufio.NewScanner(&buf)
	var lines []map[string]any
	for sc.Scan() {
		lines = append(lines, decode(t, sc.Bytes()))
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines", len(lines))
	}
	if _, ok := lines[0]["empty"]; ok {
		t.Errorf("an empty group wrote a key: %v", lines[0])
	}
	g := lines[1]["empty"].(map[string]any)["g"].(map[string]any)
	if g["a"] != float64(1) || g["h"].(map[string]any)["b"] != "x" {
		t.Errorf("groups %v", lines[1])
	}
}

func TestConsoleEncoding(t *testing.T) {
	var buf bytes.Buffer
	Slog(NewWithEncoding(&buf, zapcore.InfoLevel, "console")).Info("ready to serve client requests")
	// zap's console encoder: ts, level, caller, msg separated by tabs.
	parts := strings.Split(strings.TrimSpace(buf.String()), "\t")
	if len(parts) != 4 || parts[1] != "info" || !strings.HasPrefix(parts[2], "etcdlog/etcdlog_test.go:") || parts[3] != "ready to serve client requests" {
		t.Fatalf("console line %q", buf.String())
	}
}

// Zap over an slog logger of this package writes through the same core:
// etcd's line shape, the logger's attributes, the caller at the zap call.
// Over any other slog handler each entry becomes a record with its fields.
func TestZapSharesTheSlogLoggersOutput(t *testing.T) {
	var buf bytes.Buffer
	lg := Slog(New(&buf, zapcore.InfoLevel)).With("local-member-id", "8e9e05c52164694d")
	z := Zap(lg)
	want := nextLine()
	z.Info("completed auto revision compaction", zap.Int64("revision", 7), zap.Duration("took", 1500*time.Millisecond))
	m := decode(t, bytes.TrimSpace(buf.Bytes()))
	if m["msg"] != "completed auto revision compaction" || m["caller"] != want || m["revision"] != 7.0 ||
		m["took"] != "1.5s" || m["local-member-id"] != "8e9e05c52164694d" || m["level"] != "info" {
		t.Errorf("line %v; want the caller %s and every field", m, want)
	}
	if got := keysInOrder(t, bytes.TrimSpace(buf.Bytes())); !slices.Equal(got[:4], []string{"level", "ts", "caller", "msg"}) {
		t.Errorf("keys %v; want etcd's level, ts, caller, msg first", got)
	}

	var text bytes.Buffer
	other := Zap(slog.New(slog.NewTextHandler(&text, nil)).With("member", "m1"))
	other.Named("compactor").Warn("failed auto periodic compaction", zap.Int64("revision", 3), zap.Error(errors.New("boom")))
	for _, s := range []string{"level=WARN", `msg="failed auto periodic compaction"`, "member=m1", "logger=compactor", "revision=3", "error=boom"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("%q lacks %s", text.String(), s)
		}
	}
	other.Debug("not enabled")
	if strings.Contains(text.String(), "not enabled") {
		t.Errorf("debug line written at info: %q", text.String())
	}
}
