package mvcc

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("/registry/key/%08d", i))
	}
	return keys
}

// BenchmarkPut: overwrites over 100k existing keys with 128-byte values,
// with a View taken every viewEvery puts (0: never), as the applier does
// once per applied batch.
func BenchmarkPut(b *testing.B) {
	for _, viewEvery := range []int{0, 1, 16} {
		b.Run(fmt.Sprintf("view-every-%d", viewEvery), func(b *testing.B) {
			keys := benchKeys(100000)
			s := New()
			val := make([]byte, 128)
			for _, k := range keys {
				s.Put(&pb.PutRequest{Key: k, Value: val})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Put(&pb.PutRequest{Key: keys[i%len(keys)], Value: val}); err != nil {
					b.Fatal(err)
				}
				if viewEvery > 0 && i%viewEvery == 0 {
					s.View()
				}
			}
		})
	}
}

// BenchmarkPutNewKeys: every put creates a key.
func BenchmarkPutNewKeys(b *testing.B) {
	keys := benchKeys(b.N)
	s := New()
	val := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Put(&pb.PutRequest{Key: keys[i], Value: val})
	}
}

func BenchmarkTxnCompareAndPut(b *testing.B) {
	keys := benchKeys(10000)
	s := New()
	for _, k := range keys {
		s.Put(&pb.PutRequest{Key: k, Value: []byte("v")})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		s.Txn(&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: k, Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 0}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: k, Value: []byte("w")}}}},
		})
	}
}

func BenchmarkRangeSingleKey(b *testing.B) {
	keys := benchKeys(100000)
	s := New()
	for _, k := range keys {
		s.Put(&pb.PutRequest{Key: k, Value: []byte("v")})
	}
	v := s.View()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.Range(&pb.RangeRequest{Key: keys[i%len(keys)]})
	}
}

func BenchmarkRangeLimit100(b *testing.B) {
	keys := benchKeys(100000)
	s := New()
	for _, k := range keys {
		s.Put(&pb.PutRequest{Key: k, Value: []byte("v")})
	}
	v := s.View()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.Range(&pb.RangeRequest{Key: keys[(i*7919)%len(keys)], RangeEnd: []byte{0}, Limit: 100})
	}
}

func BenchmarkCompact(b *testing.B) {
	keys := benchKeys(100000)
	val := make([]byte, 128)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := New()
		for r := 0; r < 3; r++ {
			for _, k := range keys {
				s.Put(&pb.PutRequest{Key: k, Value: val})
			}
		}
		b.StartTimer()
		s.Compact(s.Rev() - int64(len(keys))/2)
	}
}

// BenchmarkPutRecordingEvents: BenchmarkPut's view-every-16 with watch
// events recorded and taken every 16 puts, as the applier does for a
// batch.
func BenchmarkPutRecordingEvents(b *testing.B) {
	keys := benchKeys(100000)
	s := New()
	val := make([]byte, 128)
	for _, k := range keys {
		s.Put(&pb.PutRequest{Key: k, Value: val})
	}
	s.RecordEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(&pb.PutRequest{Key: keys[i%len(keys)], Value: val}); err != nil {
			b.Fatal(err)
		}
		if i%16 == 0 {
			s.View()
			s.TakeEvents()
		}
	}
}

// snapshotStore is a store of 100,000 keys with 256-byte values and two
// revisions each, the shape of a large member's keyspace.
func snapshotStore(b *testing.B) *Store {
	b.Helper()
	s := New()
	val := bytes.Repeat([]byte("v"), 256)
	for round := 0; round < 2; round++ {
		for i := 0; i < 100_000; i++ {
			if _, err := s.Put(&pb.PutRequest{Key: fmt.Appendf(nil, "key-%08d", i), Value: val}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// BenchmarkSnapshotWrite is View.WriteTo of snapshotStore, in bytes/s.
func BenchmarkSnapshotWrite(b *testing.B) {
	v := snapshotStore(b).View()
	n, _ := v.WriteTo(io.Discard)
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotRestore is Restore of snapshotStore's snapshot, in
// bytes/s.
func BenchmarkSnapshotRestore(b *testing.B) {
	var buf bytes.Buffer
	if _, err := snapshotStore(b).View().WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Restore(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
