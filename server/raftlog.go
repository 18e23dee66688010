package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/quorum-kv/quorum/internal/etcdlog"
	"go.etcd.io/raft/v3"
)

// raftLogger adapts slog to raft.Logger as etcd's zapRaftLogger adapts
// zap: the raft library's own texts ("8e9e05c52164694d became leader at
// term 2"), on a logger named "raft", with the raft library's call site as
// the caller ("v3@v3.6.0/raft.go:970"), never this adapter's.
type raftLogger struct{ lg *slog.Logger }

var _ raft.Logger = (*raftLogger)(nil)

func newRaftLogger(lg *slog.Logger) *raftLogger { return &raftLogger{lg: etcdlog.Named(lg, "raft")} }

// log writes msg at level with the PC of the raft library's call: skip 3
// is runtime.Callers, log, and the raft.Logger method.
func (l *raftLogger) log(level slog.Level, msg string) {
	ctx := context.Background()
	if !l.lg.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	_ = l.lg.Handler().Handle(ctx, slog.NewRecord(time.Now(), level, msg, pcs[0]))
}

func (l *raftLogger) Debug(v ...any) {
	l.log(slog.LevelDebug, fmt.Sprint(v...))
}

func (l *raftLogger) Debugf(format string, v ...any) {
	l.log(slog.LevelDebug, fmt.Sprintf(format, v...))
}

func (l *raftLogger) Info(v ...any) {
	l.log(slog.LevelInfo, fmt.Sprint(v...))
}

func (l *raftLogger) Infof(format string, v ...any) {
	l.log(slog.LevelInfo, fmt.Sprintf(format, v...))
}

func (l *raftLogger) Warning(v ...any) {
	l.log(slog.LevelWarn, fmt.Sprint(v...))
}

func (l *raftLogger) Warningf(format string, v ...any) {
	l.log(slog.LevelWarn, fmt.Sprintf(format, v...))
}

func (l *raftLogger) Error(v ...any) {
	l.log(slog.LevelError, fmt.Sprint(v...))
}

func (l *raftLogger) Errorf(format string, v ...any) {
	l.log(slog.LevelError, fmt.Sprintf(format, v...))
}

func (l *raftLogger) Fatal(v ...any) {
	l.log(etcdlog.LevelFatal, fmt.Sprint(v...))
	os.Exit(1)
}

func (l *raftLogger) Fatalf(format string, v ...any) {
	l.log(etcdlog.LevelFatal, fmt.Sprintf(format, v...))
	os.Exit(1)
}

func (l *raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	l.log(etcdlog.LevelPanic, s)
	panic(s)
}

func (l *raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	l.log(etcdlog.LevelPanic, s)
	panic(s)
}
