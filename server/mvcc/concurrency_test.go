package mvcc

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// fingerprint hashes everything a View shows: all keys at every revision it
// can still read, its counters and its snapshot.
func fingerprint(v *View) uint64 {
	h := fnv.New64a()
	if _, err := v.WriteTo(h); err != nil {
		panic(err)
	}
	fmt.Fprintf(h, "%d %d %d|", v.Rev(), v.CompactRev(), v.Size())
	for r := max(v.CompactRev(), 1); r <= v.Rev(); r++ {
		resp, err := v.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: r})
		if err != nil {
			fmt.Fprintf(h, "%d:%v|", r, err)
			continue
		}
		b, _ := resp.Marshal()
		h.Write(b)
	}
	return h.Sum64()
}

// TestViewsStableUnderConcurrentWrites: one writer mutates the store and
// publishes Views; readers check, over and over while the writer goes on,
// that every View they hold still shows exactly what it showed when it was
// published. Run with -race.
func TestViewsStableUnderConcurrentWrites(t *testing.T) {
	const (
		writes  = 3000
		readers = 4
	)
	seed := int64(1)
	rng := rand.New(rand.NewSource(seed))
	s := New()

	type published struct {
		v  *View
		fp uint64
	}
	var latest atomic.Pointer[published]
	publish := func() {
		v := s.View()
		latest.Store(&published{v: v, fp: fingerprint(v)})
	}
	publish()

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var held []*published
			for n := 0; !done.Load() || n < 50; n++ {
				p := latest.Load()
				if len(held) < 16 {
					held = append(held, p)
				} else {
					held[n%len(held)] = p
				}
				for _, h := range held {
					if got := fingerprint(h.v); got != h.fp {
						errs <- fmt.Errorf("reader %d: view at rev %d changed", i, h.v.Rev())
						return
					}
				}
			}
		}(i)
	}

	key := func() []byte { return []byte{'a' + byte(rng.Intn(8))} }
	for i := 0; i < writes; i++ {
		switch x := rng.Intn(100); {
		case x < 50:
			s.Put(&pb.PutRequest{Key: key(), Value: []byte(fmt.Sprint(i))})
		case x < 65:
			k := key()
			s.DeleteRange(&pb.DeleteRangeRequest{Key: k, RangeEnd: []byte{k[0] + byte(rng.Intn(3))}})
		case x < 95:
			s.Txn(&pb.TxnRequest{
				Compare: []*pb.Compare{cmpVersion(string(key()), GT, 1)},
				Success: ops(opPut(string(key()), "t"), opDel(string(key()), "")),
				Failure: ops(opPut(string(key()), "f")),
			})
		default:
			if r := s.Rev() - int64(rng.Intn(20)); r > s.CompactRev() {
				s.Compact(r)
			}
		}
		if rng.Intn(3) == 0 {
			publish()
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
