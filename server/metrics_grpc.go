package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// countingCodec is gRPC's proto codec counting the bytes of every message
// it marshals for and unmarshals from a client, as etcd's codec does
// (etcdserver/api/v3rpc/codec.go) for etcd_network_client_grpc_sent_bytes_total
// and etcd_network_client_grpc_received_bytes_total: message bytes, without
// gRPC's framing. Each call adds to a counter, one atomic operation.
type countingCodec struct {
	encoding.CodecV2
	sent, received prometheus.Counter
}

var _ encoding.CodecV2 = countingCodec{}

func newCountingCodec(m *serverMetrics) countingCodec {
	return countingCodec{CodecV2: encoding.GetCodecV2(proto.Name), sent: m.clientSentBytes, received: m.clientReceivedBytes}
}

func (c countingCodec) Marshal(v any) (mem.BufferSlice, error) {
	out, err := c.CodecV2.Marshal(v)
	if err == nil {
		c.sent.Add(float64(out.Len()))
	}
	return out, err
}

func (c countingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	c.received.Add(float64(data.Len()))
	return c.CodecV2.Unmarshal(data, v)
}
