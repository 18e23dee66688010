// Package etcdlog makes Quorum's log lines etcd's: an slog.Logger whose
// records are written by a zap core built as etcd builds its own, so that
// each line has etcd's shape — level, ts, logger (when named), caller, msg,
// then the fields — and scripts and log pipelines written for etcd read
// quorumd's logs unchanged.
//
// The caller of a line is the quorumd call site of the slog call (or, for a
// record built with an explicit PC, that PC's frame), written as etcd's
// zap.ShortCallerEncoder writes it ("server/server.go:129"). Error and
// higher lines carry a "stacktrace" from that call site, as zap's production
// config adds one. Levels above slog.LevelError map to zap's panic and
// fatal levels: see LevelPanic and LevelFatal.
package etcdlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Levels beyond slog's, for the raft.Logger's Panic and Fatal: written as
// zap writes them ("panic", "fatal"). Logging at them neither panics nor
// exits; the caller does.
const (
	LevelPanic = slog.LevelError + 4
	LevelFatal = slog.LevelError + 8
)

// Slog returns an slog.Logger that writes through z's core. Only the core
// is used: the caller, stack trace and logger name come from this package,
// not from z's options.
func Slog(z *zap.Logger) *slog.Logger {
	return slog.New(&handler{core: z.Core()})
}

// New returns a zap logger built as etcd builds its default one
// (logutil.DefaultZapLoggerConfig: JSON, etcd's time and duration
// encoders, sampling) that writes to w at level and above. It is the one
// path tests and the harness use to get etcd's line shape without a
// process; quorumd itself gets its zap logger from etcd's embed.Config.
func New(w io.Writer, level zapcore.Level) *zap.Logger {
	return NewWithEncoding(w, level, "json")
}

// NewWithEncoding is New with etcd's --log-format: "json" or "console".
func NewWithEncoding(w io.Writer, level zapcore.Level, encoding string) *zap.Logger {
	cfg := logutil.DefaultZapLoggerConfig
	var enc zapcore.Encoder
	if encoding == "console" {
		enc = zapcore.NewConsoleEncoder(cfg.EncoderConfig)
	} else {
		enc = zapcore.NewJSONEncoder(cfg.EncoderConfig)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zap.NewAtomicLevelAt(level))
	if s := cfg.Sampling; s != nil {
		core = zapcore.NewSamplerWithOptions(core, time.Second, s.Initial, s.Thereafter)
	}
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel), zap.ErrorOutput(zapcore.AddSync(w)))
}

// Default returns Slog(New(w, info)): etcd's default logger, writing to w.
func Default(w io.Writer) *slog.Logger { return Slog(New(w, zapcore.InfoLevel)) }

// Named returns lg with its lines named as zap's Logger.Named names them
// (the "logger" key, e.g. etcd's "raft"). For a logger not made by this
// package it adds a "logger" attribute instead.
func Named(lg *slog.Logger, name string) *slog.Logger {
	h, ok := lg.Handler().(*handler)
	if !ok {
		return lg.With("logger", name)
	}
	c := *h
	if c.name == "" {
		c.name = name
	} else {
		c.name = c.name + "." + name
	}
	return slog.New(&c)
}

// handler is an slog.Handler writing to a zap core.
type handler struct {
	core zapcore.Core
	name string
	// groups not yet opened as zap namespaces: opened at the first field,
	// so that a group with no fields writes nothing (slog's contract).
	groups []string
}

var _ slog.Handler = (*handler)(nil)

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return h.core.Enabled(zapLevel(l))
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	ent := zapcore.Entry{Level: zapLevel(r.Level), Time: r.Time, LoggerName: h.name, Message: r.Message}
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		ent.Caller = zapcore.EntryCaller{Defined: f.PC != 0, PC: f.PC, File: f.File, Line: f.Line, Function: f.Function}
	}
	ce := h.core.Check(ent, nil)
	if ce == nil {
		return nil
	}
	if ent.Level >= zapcore.ErrorLevel {
		ce.Stack = stackFrom(r.PC)
	}
	fields := make([]zapcore.Field, 0, r.NumAttrs()+len(h.groups))
	groups := h.groups
	r.Attrs(func(a slog.Attr) bool {
		fields = appendField(fields, &groups, a)
		return true
	})
	ce.Write(fields...)
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var fields []zapcore.Field
	for _, a := range attrs {
		fields = appendField(fields, &c.groups, a)
	}
	c.core = h.core.With(fields)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(slices.Clip(h.groups), name)
	return &c
}

// appendField appends a's field, first opening the pending groups and
// clearing them (once open, every later field of the line is inside them).
func appendField(fields []zapcore.Field, groups *[]string, a slog.Attr) []zapcore.Field {
	f := field(a)
	if f.Type == zapcore.SkipType {
		return fields
	}
	for _, g := range *groups {
		fields = append(fields, zap.Namespace(g))
	}
	*groups = nil
	return append(fields, f)
}

// field converts an attribute as zap's typed constructors would encode the
// same value: a duration with etcd's StringDurationEncoder ("1.2s"), an
// error as zap.NamedError (its message, and "<key>Verbose" for an error
// that formats itself), a slice or Stringer as zap.Any.
func field(a slog.Attr) zapcore.Field {
	if a.Equal(slog.Attr{}) {
		return zap.Skip()
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindBool:
		return zap.Bool(a.Key, v.Bool())
	case slog.KindDuration:
		return zap.Duration(a.Key, v.Duration())
	case slog.KindFloat64:
		return zap.Float64(a.Key, v.Float64())
	case slog.KindInt64:
		return zap.Int64(a.Key, v.Int64())
	case slog.KindUint64:
		return zap.Uint64(a.Key, v.Uint64())
	case slog.KindString:
		return zap.String(a.Key, v.String())
	case slog.KindTime:
		return zap.Time(a.Key, v.Time())
	case slog.KindGroup:
		attrs := v.Group()
		if len(attrs) == 0 {
			return zap.Skip()
		}
		if a.Key == "" {
			return zap.Inline(group(attrs))
		}
		return zap.Object(a.Key, group(attrs))
	}
	if err, ok := v.Any().(error); ok {
		return zap.NamedError(a.Key, err)
	}
	return zap.Any(a.Key, v.Any())
}

type group []slog.Attr

func (g group) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, a := range g {
		field(a).AddTo(enc)
	}
	return nil
}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= LevelFatal:
		return zapcore.FatalLevel
	case l >= LevelPanic:
		return zapcore.PanicLevel
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}

// stackFrom formats the goroutine's stack from the frame at pc outwards, as
// zap formats a stacktrace ("function\n\tfile:line" per frame). Without pc
// among the frames it formats the whole stack above this package.
func stackFrom(pc uintptr) string {
	pcs := make([]uintptr, 64)
	pcs = pcs[:runtime.Callers(3, pcs)]
	if i := slices.Index(pcs, pc); i >= 0 {
		pcs = pcs[i:]
	}
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.PC != 0 {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "%s\n\t%s:%d", f.Function, f.File, f.Line)
		}
		if !more {
			return b.String()
		}
	}
}

// Zap returns a zap logger writing the same lines as lg, for etcd's
// packages that take a *zap.Logger (v3compactor): over lg's own core, with
// its name and attributes, when lg was made by this package (Slog), so
// the lines are etcd's with the caller in etcd's package, as etcd's own
// are; otherwise over a core that hands each entry to lg's handler.
func Zap(lg *slog.Logger) *zap.Logger {
	opts := []zap.Option{zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)}
	if h, ok := lg.Handler().(*handler); ok && len(h.groups) == 0 {
		return zap.New(h.core, opts...).Named(h.name)
	}
	return zap.New(&slogCore{h: lg.Handler()}, opts...)
}

// slogCore is a zap core over an slog.Handler that is not this package's:
// each entry becomes one record, its fields attributes.
type slogCore struct {
	h      slog.Handler
	fields []zapcore.Field
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *slogCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *slogCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(ent.Time, slogLevel(ent.Level), ent.Message, ent.Caller.PC)
	if ent.LoggerName != "" {
		r.AddAttrs(slog.String("logger", ent.LoggerName))
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(slices.Clip(c.fields), fields...) {
		f.AddTo(enc)
		r.AddAttrs(slog.Any(f.Key, enc.Fields[f.Key]))
	}
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.FatalLevel:
		return LevelFatal
	case l >= zapcore.DPanicLevel:
		return LevelPanic
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l >= zapcore.WarnLevel:
		return slog.LevelWarn
	case l >= zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
