// Package etcdlog makes Quorum's log lines etcd's: an slog.Logger whose
// records are written by a zap logger built as etcd builds its own (etcd's
// zap JSON: level, ts, caller, msg, then the fields), so that scripts and
// log pipelines written for etcd read quorumd's logs unchanged.
package etcdlog

import (
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Slog returns an slog.Logger that writes through z, with the caller of
// each log call as zap's caller field.
func Slog(z *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(z.Core(), zapslog.WithCaller(true)))
}
