package server

import (
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to raft.Logger.
type raftLogger struct{ lg *slog.Logger }

func newRaftLogger(lg *slog.Logger) *raftLogger { return &raftLogger{lg: lg.With("component", "raft")} }

func (l *raftLogger) Debug(v ...any)                 { l.lg.Debug(fmt.Sprint(v...)) }
func (l *raftLogger) Debugf(format string, v ...any) { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l *raftLogger) Info(v ...any)                  { l.lg.Info(fmt.Sprint(v...)) }
func (l *raftLogger) Infof(format string, v ...any)  { l.lg.Info(fmt.Sprintf(format, v...)) }
func (l *raftLogger) Warning(v ...any)               { l.lg.Warn(fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.lg.Warn(fmt.Sprintf(format, v...))
}
func (l *raftLogger) Error(v ...any)                 { l.lg.Error(fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(format string, v ...any) { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l *raftLogger) Fatal(v ...any) {
	l.lg.Error(fmt.Sprint(v...))
	os.Exit(1)
}
func (l *raftLogger) Fatalf(format string, v ...any) {
	l.lg.Error(fmt.Sprintf(format, v...))
	os.Exit(1)
}
func (l *raftLogger) Panic(v ...any) {
	s := fmt.Sprint(v...)
	l.lg.Error(s)
	panic(s)
}
func (l *raftLogger) Panicf(format string, v ...any) {
	s := fmt.Sprintf(format, v...)
	l.lg.Error(s)
	panic(s)
}
