// Package deps pins the project's chosen libraries in go.mod while the
// packages that use them are written. It is removed once each is imported
// by real code.
package deps

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/anishathalye/porcupine"
	_ "github.com/cheggaaa/pb/v3"
	_ "github.com/google/btree"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/etcd/api/v3/etcdserverpb"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/raft/v3"
	_ "gonum.org/v1/plot"
	_ "google.golang.org/grpc"
)
