package mvcc

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The model test drives the Store and a trivially simple reference
// implementation — a full copy of the keyspace per revision — with the
// same seeded random requests and requires identical responses, errors and
// states.

var (
	modelSeed  = flag.Int64("model.seed", 0, "run the model test with this seed only")
	modelSteps = flag.Int("model.steps", 3000, "steps per model test seed")
)

type refKV struct {
	value                       string
	create, mod, version, lease int64
}

type refStore struct {
	states  []map[string]refKV // states[r]: the keyspace at revision r (r >= 1)
	compact int64
}

func newRef() *refStore {
	return &refStore{states: []map[string]refKV{nil, {}}, compact: -1}
}

func (m *refStore) rev() int64 { return int64(len(m.states) - 1) }

func inRange(k string, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return k == string(key)
	case len(end) == 1 && end[0] == 0:
		return k >= string(key)
	}
	return k >= string(key) && k < string(end)
}

func sortedKeys(st map[string]refKV, key, end []byte) []string {
	var ks []string
	for k := range st {
		if inRange(k, key, end) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (kv refKV) pb(k string) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{Key: []byte(k), CreateRevision: kv.create, ModRevision: kv.mod, Version: kv.version, Lease: kv.lease}
	if kv.value != "" {
		out.Value = []byte(kv.value)
	}
	return out
}

// rangeIn serves r from state st (the revision already resolved).
func rangeIn(st map[string]refKV, r *pb.RangeRequest) *pb.RangeResponse {
	ks := sortedKeys(st, r.Key, r.RangeEnd)
	resp := &pb.RangeResponse{Count: int64(len(ks)), Kvs: []*mvccpb.KeyValue{}}
	if r.CountOnly {
		return resp
	}
	filtered := r.MaxModRevision != 0 || r.MinModRevision != 0 || r.MaxCreateRevision != 0 || r.MinCreateRevision != 0
	if r.SortOrder == pb.RangeRequest_NONE && !filtered && r.Limit > 0 && int64(len(ks)) > r.Limit+1 {
		// etcd quirk: with no sort order (even with a sort target that
		// implies ascending order) and no filter, only the first limit+1
		// keys are fetched, then sorted and truncated.
		ks = ks[:r.Limit+1]
	}
	var kvs []*mvccpb.KeyValue
	for _, k := range ks {
		kv := st[k].pb(k)
		if (r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision) ||
			(r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision) ||
			(r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision) {
			continue
		}
		kvs = append(kvs, kv)
	}
	order := r.SortOrder
	if order == pb.RangeRequest_NONE && r.SortTarget != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND
	}
	cmp := func(a, b *mvccpb.KeyValue) int {
		switch r.SortTarget {
		case pb.RangeRequest_VERSION:
			return compareInt64(a.Version, b.Version)
		case pb.RangeRequest_CREATE:
			return compareInt64(a.CreateRevision, b.CreateRevision)
		case pb.RangeRequest_MOD:
			return compareInt64(a.ModRevision, b.ModRevision)
		case pb.RangeRequest_VALUE:
			return bytes.Compare(a.Value, b.Value)
		}
		return bytes.Compare(a.Key, b.Key)
	}
	// Stable sorts: etcd's sort.Sort is stable on the <= 12 keys the model
	// uses (insertion sort).
	switch order {
	case pb.RangeRequest_ASCEND:
		sort.SliceStable(kvs, func(i, j int) bool { return cmp(kvs[i], kvs[j]) < 0 })
	case pb.RangeRequest_DESCEND:
		sort.SliceStable(kvs, func(i, j int) bool { return cmp(kvs[i], kvs[j]) > 0 })
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp
}

func (m *refStore) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	at := r.Revision
	switch {
	case at > m.rev():
		return nil, ErrFutureRev
	case at <= 0:
		at = m.rev()
	case at < m.compact:
		return nil, ErrCompacted
	}
	return rangeIn(m.states[at], r), nil
}

// refTxn is one write transaction on the reference.
type refTxn struct {
	m       *refStore
	w       map[string]refKV // working copy of the latest state
	changed bool
}

func (m *refStore) begin() *refTxn {
	w := make(map[string]refKV, len(m.states[m.rev()]))
	for k, v := range m.states[m.rev()] {
		w[k] = v
	}
	return &refTxn{m: m, w: w}
}

func (t *refTxn) commit() {
	if t.changed {
		t.m.states = append(t.m.states, t.w)
	}
}

func (t *refTxn) cur() int64 {
	if t.changed {
		return t.m.rev() + 1
	}
	return t.m.rev()
}

func (t *refTxn) put(p *pb.PutRequest, nested bool) (*pb.PutResponse, error) {
	k := string(p.Key)
	old, ok := t.w[k]
	if (p.IgnoreValue || p.IgnoreLease) && !ok {
		return nil, ErrKeyNotFound
	}
	next := t.m.rev() + 1
	kv := refKV{value: string(p.Value), create: next, mod: next, version: 1, lease: p.Lease}
	if ok {
		kv.create, kv.version = old.create, old.version+1
	}
	if p.IgnoreValue {
		kv.value = old.value
	}
	if p.IgnoreLease {
		kv.lease = old.lease
	}
	resp := &pb.PutResponse{}
	if p.PrevKv && ok {
		resp.PrevKv = old.pb(k)
	}
	t.w[k] = kv
	t.changed = true
	if nested {
		resp.Header = &pb.ResponseHeader{Revision: next}
	}
	return resp, nil
}

func (t *refTxn) del(d *pb.DeleteRangeRequest, nested bool) *pb.DeleteRangeResponse {
	ks := sortedKeys(t.w, d.Key, d.RangeEnd)
	resp := &pb.DeleteRangeResponse{Deleted: int64(len(ks))}
	if d.PrevKv {
		resp.PrevKvs = []*mvccpb.KeyValue{}
	}
	for _, k := range ks {
		if d.PrevKv {
			resp.PrevKvs = append(resp.PrevKvs, t.w[k].pb(k))
		}
		delete(t.w, k)
		t.changed = true
	}
	if nested {
		resp.Header = &pb.ResponseHeader{Revision: t.cur()}
	}
	return resp
}

func (m *refStore) Put(p *pb.PutRequest) (*pb.PutResponse, error) {
	t := m.begin()
	resp, err := t.put(p, false)
	if err == nil {
		t.commit()
	}
	return resp, err
}

func (m *refStore) DeleteRange(d *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	t := m.begin()
	resp := t.del(d, false)
	t.commit()
	return resp, nil
}

func (m *refStore) Compact(r int64) error {
	if r <= m.compact {
		return ErrCompacted
	}
	if r > m.rev() {
		return ErrFutureRev
	}
	m.compact = r
	return nil
}

// refCompare: every key of the compare's range satisfies it; no key at all
// is a zero KeyValue, for which value compares fail.
func refCompare(st map[string]refKV, c *pb.Compare) bool {
	ks := sortedKeys(st, c.Key, c.RangeEnd)
	if len(ks) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, k := range ks {
		if !compareKV(c, st[k].pb(k)) {
			return false
		}
	}
	return true
}

func (m *refStore) Txn(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	pre := m.states[m.rev()]
	// Decide every branch on the state before the txn.
	taken := map[*pb.TxnRequest]bool{}
	var decide func(rt *pb.TxnRequest) error
	decide = func(rt *pb.TxnRequest) error {
		ok := true
		for _, c := range rt.Compare {
			ok = ok && refCompare(pre, c)
		}
		taken[rt] = ok
		ops := rt.Success
		if !ok {
			ops = rt.Failure
		}
		for _, op := range ops {
			switch tv := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				if r := tv.RequestRange.Revision; r != 0 && r > m.rev() {
					return ErrFutureRev
				} else if r != 0 && r < m.compact {
					return ErrCompacted
				}
			case *pb.RequestOp_RequestPut:
				if _, exists := pre[string(tv.RequestPut.Key)]; !exists && (tv.RequestPut.IgnoreValue || tv.RequestPut.IgnoreLease) {
					return ErrKeyNotFound
				}
			case *pb.RequestOp_RequestTxn:
				if err := decide(tv.RequestTxn); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := decide(rt); err != nil {
		return nil, err
	}
	t := m.begin()
	var run func(rt *pb.TxnRequest) (*pb.TxnResponse, error)
	run = func(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
		ops := rt.Success
		if !taken[rt] {
			ops = rt.Failure
		}
		resp := &pb.TxnResponse{Succeeded: taken[rt], Responses: []*pb.ResponseOp{}}
		for _, op := range ops {
			ro := &pb.ResponseOp{}
			switch tv := op.Request.(type) {
			case *pb.RequestOp_RequestRange:
				st, r := t.w, tv.RequestRange
				if r.Revision > 0 {
					st = m.states[r.Revision]
				}
				rr := rangeIn(st, r)
				rr.Header = &pb.ResponseHeader{Revision: t.cur()}
				ro.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
			case *pb.RequestOp_RequestPut:
				pr, err := t.put(tv.RequestPut, true)
				if err != nil {
					return nil, err
				}
				ro.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
			case *pb.RequestOp_RequestDeleteRange:
				ro.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: t.del(tv.RequestDeleteRange, true)}
			case *pb.RequestOp_RequestTxn:
				tr, err := run(tv.RequestTxn)
				if err != nil {
					return nil, err
				}
				tr.Header = &pb.ResponseHeader{}
				ro.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
			}
			resp.Responses = append(resp.Responses, ro)
		}
		return resp, nil
	}
	resp, err := run(rt)
	if err != nil {
		return nil, err
	}
	t.commit()
	return resp, nil
}

// reqGen makes random requests over a keyspace of at most 12 keys.
type reqGen struct {
	r            *rand.Rand
	rev, compact int64
}

var genKeys = []string{"a", "ab", "abc", "b", "b\x00", "ba", "c", "d", "e", "z", "\x00", "\xff"}

func (g *reqGen) key() []byte { return []byte(genKeys[g.r.Intn(len(genKeys))]) }

func (g *reqGen) rangeEnd(k []byte) []byte {
	switch g.r.Intn(6) {
	case 0, 1:
		return nil
	case 2:
		return []byte{0}
	case 3:
		return append(append([]byte{}, k...), 0)
	}
	return g.key()
}

func (g *reqGen) value() []byte {
	return [][]byte{nil, []byte("x"), []byte("y"), []byte("zz"), []byte("a")}[g.r.Intn(5)]
}

func (g *reqGen) revision() int64 {
	switch g.r.Intn(8) {
	case 0:
		return g.compact - 1 + g.r.Int63n(3)
	case 1:
		return g.rev - 1 + g.r.Int63n(3)
	case 2:
		return 1 + g.r.Int63n(g.rev)
	case 3:
		return -g.r.Int63n(3)
	}
	return 0
}

func (g *reqGen) rangeReq() *pb.RangeRequest {
	k := g.key()
	r := &pb.RangeRequest{Key: k, RangeEnd: g.rangeEnd(k), Revision: g.revision()}
	if g.r.Intn(10) == 0 {
		r.Key, r.RangeEnd = []byte{0}, []byte{0}
	}
	if g.r.Intn(2) == 0 {
		r.Limit = g.r.Int63n(5) - 1
	}
	if g.r.Intn(2) == 0 {
		r.SortOrder = pb.RangeRequest_SortOrder(g.r.Intn(3))
		r.SortTarget = pb.RangeRequest_SortTarget(g.r.Intn(5))
	}
	r.KeysOnly = g.r.Intn(5) == 0
	r.CountOnly = g.r.Intn(6) == 0
	if g.r.Intn(4) == 0 {
		some := func() int64 {
			if g.r.Intn(2) == 0 {
				return 0
			}
			return g.r.Int63n(g.rev + 2)
		}
		r.MinModRevision, r.MaxModRevision = some(), some()
		r.MinCreateRevision, r.MaxCreateRevision = some(), some()
	}
	return r
}

func (g *reqGen) putReq() *pb.PutRequest {
	p := &pb.PutRequest{Key: g.key(), Value: g.value(), Lease: []int64{0, 0, 7, 9}[g.r.Intn(4)], PrevKv: g.r.Intn(2) == 0}
	if g.r.Intn(6) == 0 {
		p.IgnoreValue, p.Value = true, nil
	}
	if g.r.Intn(6) == 0 {
		p.IgnoreLease, p.Lease = true, 0
	}
	return p
}

func (g *reqGen) delReq() *pb.DeleteRangeRequest {
	k := g.key()
	return &pb.DeleteRangeRequest{Key: k, RangeEnd: g.rangeEnd(k), PrevKv: g.r.Intn(2) == 0}
}

func (g *reqGen) compare() *pb.Compare {
	k := g.key()
	c := &pb.Compare{Key: k, Result: pb.Compare_CompareResult(g.r.Intn(4)), Target: pb.Compare_CompareTarget(g.r.Intn(5))}
	if g.r.Intn(4) == 0 {
		c.RangeEnd = g.rangeEnd(k)
	}
	n := g.r.Int63n(g.rev + 2)
	switch c.Target {
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: g.value()}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: g.r.Int63n(4)}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: n}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: n}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: []int64{0, 7}[g.r.Intn(2)]}
	}
	return c
}

func (g *reqGen) txnReq(depth int) *pb.TxnRequest {
	t := &pb.TxnRequest{}
	for i := g.r.Intn(3); i > 0; i-- {
		t.Compare = append(t.Compare, g.compare())
	}
	branch := func() []*pb.RequestOp {
		var o []*pb.RequestOp
		for i := g.r.Intn(4); i > 0; i-- {
			switch x := g.r.Intn(10); {
			case x < 3:
				o = append(o, opRangeReq(g.rangeReq()))
			case x < 6:
				o = append(o, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: g.putReq()}})
			case x < 8:
				o = append(o, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: g.delReq()}})
			default:
				if depth < 2 {
					o = append(o, opTxn(g.txnReq(depth+1)))
				}
			}
		}
		return o
	}
	t.Success, t.Failure = branch(), branch()
	return t
}

type marshaler interface {
	Marshal() ([]byte, error)
	String() string
}

// sameResp compares two responses by their wire encoding (nil and empty
// slices are the same on the wire).
func sameResp(a, b marshaler) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// modelRun runs steps random requests against a Store and the reference
// and returns the first difference.
func modelRun(seed int64, steps int) error {
	rng := rand.New(rand.NewSource(seed))
	s, m := New(), newRef()
	g := &reqGen{r: rng}
	type heldView struct {
		v    *View
		want string
	}
	var views []heldView
	check := func(step int, what string, req fmt.Stringer, got, want marshaler, gotErr, wantErr error) error {
		if !errors.Is(gotErr, wantErr) || (gotErr == nil) != (wantErr == nil) {
			return fmt.Errorf("step %d %s %v: err %v, want %v", step, what, req, gotErr, wantErr)
		}
		if gotErr == nil && !sameResp(got, want) {
			return fmt.Errorf("step %d %s %v:\n got  %v\n want %v", step, what, req, got, want)
		}
		if s.Rev() != m.rev() {
			return fmt.Errorf("step %d %s %v: rev %d, want %d", step, what, req, s.Rev(), m.rev())
		}
		return nil
	}
	dump := func(r interface {
		Range(*pb.RangeRequest) (*pb.RangeResponse, error)
	}, rev int64) string {
		resp, err := r.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		if err != nil {
			return err.Error()
		}
		return resp.String()
	}
	for step := 0; step < steps; step++ {
		g.rev, g.compact = s.Rev(), s.CompactRev()
		var err error
		switch x := rng.Intn(100); {
		case x < 25:
			req := g.putReq()
			got, gotErr := s.Put(req)
			want, wantErr := m.Put(req)
			err = check(step, "put", req, got, want, gotErr, wantErr)
		case x < 35:
			req := g.delReq()
			got, gotErr := s.DeleteRange(req)
			want, wantErr := m.DeleteRange(req)
			err = check(step, "delete", req, got, want, gotErr, wantErr)
		case x < 55:
			req := g.rangeReq()

			var got *pb.RangeResponse
			var gotErr error
			if rng.Intn(2) == 0 {
				got, gotErr = s.Range(req)
			} else {
				got, gotErr = s.View().Range(req)
			}
			want, wantErr := m.Range(req)
			err = check(step, "range", req, got, want, gotErr, wantErr)
		case x < 93:
			req := g.txnReq(0)
			var got *pb.TxnResponse
			var gotErr error
			if IsReadOnlyTxn(req) && rng.Intn(2) == 0 {
				got, gotErr = s.View().Txn(req)
			} else {
				got, gotErr = s.Txn(req)
			}
			want, wantErr := m.Txn(req)
			err = check(step, "txn", req, got, want, gotErr, wantErr)
		case x < 96:
			r := g.compact - 1 + rng.Int63n((g.rev-g.compact)/3+3)
			req := &pb.CompactionRequest{Revision: r}
			err = check(step, "compact", req, req, req, s.Compact(r), m.Compact(r))
		case x < 98:
			// Replace the store by a snapshot of itself.
			var buf bytes.Buffer
			if _, err := s.View().WriteTo(&buf); err != nil {
				return fmt.Errorf("step %d: snapshot: %v", step, err)
			}
			if s, err = Restore(&buf); err != nil {
				return fmt.Errorf("step %d: restore: %v", step, err)
			}
		default:
			v := s.View()
			views = append(views, heldView{v, dump(v, 0)})
		}
		if err != nil {
			return err
		}
		if step%checkEvery == 0 {
			for r := max(s.CompactRev(), 1); r <= s.Rev(); r++ {
				if got, want := dump(s, r), dump(m, r); got != want {
					return fmt.Errorf("step %d: state at %d:\n got  %s\n want %s", step, r, got, want)
				}
			}
			for _, h := range views {
				if got := dump(h.v, 0); got != h.want {
					return fmt.Errorf("step %d: view at %d changed:\n got  %s\n want %s", step, h.v.Rev(), got, h.want)
				}
			}
		}
	}
	return nil
}

var checkEvery = 100

func TestModel(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6, 7, 8}
	if *modelSeed != 0 {
		seeds = []int64{*modelSeed}
	}
	steps := *modelSteps
	if testing.Short() {
		steps /= 5
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			if err := modelRun(seed, steps); err != nil {
				t.Fatalf("%v\n(reproduce: go test ./server/mvcc -run TestModel -model.seed=%d)", strings.TrimSpace(err.Error()), seed)
			}
		})
	}
}

// FuzzModel searches seeds for a difference from the reference.
func FuzzModel(f *testing.F) {
	f.Add(int64(1))
	f.Fuzz(func(t *testing.T, seed int64) {
		if err := modelRun(seed, 300); err != nil {
			t.Fatal(err)
		}
	})
}
