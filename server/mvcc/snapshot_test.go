package mvcc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// randomStore applies n random requests from seed to a new store.
func randomStore(t testing.TB, seed int64, n int) *Store {
	t.Helper()
	s := New()
	g := &reqGen{r: rand.New(rand.NewSource(seed))}
	for i := 0; i < n; i++ {
		g.rev, g.compact = s.Rev(), s.CompactRev()
		switch x := g.r.Intn(100); {
		case x < 45:
			s.Put(g.putReq())
		case x < 60:
			s.DeleteRange(g.delReq())
		case x < 95:
			s.Txn(g.txnReq(0))
		default:
			s.Compact(g.compact + g.r.Int63n((g.rev-g.compact)/3+2))
		}
	}
	return s
}

func snapshot(t testing.TB, v *View) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := v.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// sameState fails unless a and b read the same at every revision either can
// read, and have the same counters.
func sameState(t *testing.T, a, b *View) {
	t.Helper()
	if a.Rev() != b.Rev() || a.CompactRev() != b.CompactRev() || a.Size() != b.Size() {
		t.Fatalf("rev/compact/size %d/%d/%d vs %d/%d/%d", a.Rev(), a.CompactRev(), a.Size(), b.Rev(), b.CompactRev(), b.Size())
	}
	for r := max(a.CompactRev(), 1); r <= a.Rev(); r++ {
		if x, y := all(t, a, r), all(t, b, r); x != y {
			t.Fatalf("at %d: %q vs %q", r, x, y)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Store
	}{
		{"empty", New()},
		{"compacted at 0", func() *Store { s := New(); s.Compact(0); return s }()},
		{"random", randomStore(t, 1, 2000)},
		{"random without compaction", func() *Store {
			s := New()
			for i := 0; i < 300; i++ {
				mustPut(t, s, string(rune('a'+i%7)), string(rune('0'+i%10)))
				if i%5 == 0 {
					mustDel(t, s, string(rune('a'+i%3)), "")
				}
			}
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := snapshot(t, tc.s.View())
			r, err := Restore(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			sameState(t, tc.s.View(), r.View())
			if again := snapshot(t, r.View()); !bytes.Equal(again, data) {
				t.Errorf("snapshot of the restored store differs")
			}
			// Both continue identically, compaction included.
			for _, s := range []*Store{tc.s, r} {
				mustPut(t, s, "new", "1")
				mustTxn(t, s, &pb.TxnRequest{Success: ops(opPut("a", "t"), opDel("b", "c"))})
				if err := s.Compact(s.Rev() - 1); err != nil {
					t.Fatal(err)
				}
			}
			sameState(t, tc.s.View(), r.View())
		})
	}
}

func TestSnapshotDeterministic(t *testing.T) {
	a := snapshot(t, randomStore(t, 7, 1000).View())
	b := snapshot(t, randomStore(t, 7, 1000).View())
	if !bytes.Equal(a, b) {
		t.Errorf("same state, different snapshots")
	}
	if c := snapshot(t, randomStore(t, 8, 1000).View()); bytes.Equal(a, c) {
		t.Errorf("different states, same snapshot")
	}
}

func TestSnapshotOfOldView(t *testing.T) {
	s := randomStore(t, 3, 500)
	v := s.View()
	want := snapshot(t, v)
	for i := 0; i < 200; i++ {
		mustPut(t, s, "k", "v")
	}
	s.Compact(s.Rev())
	if got := snapshot(t, v); !bytes.Equal(got, want) {
		t.Errorf("a View's snapshot changed after the store moved on")
	}
}

func TestRestoreRejectsCorruptInput(t *testing.T) {
	s := New()
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "22")
	mustDel(t, s, "a", "")
	mustPut(t, s, "a", "333")
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	data := snapshot(t, s.View())

	check := func(name string, input []byte) {
		t.Helper()
		r, err := Restore(bytes.NewReader(input))
		if err == nil {
			t.Errorf("%s: restored %d keys", name, r.st.tree.Len())
			return
		}
		if !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: error %v does not wrap ErrCorruptSnapshot", name, err)
		}
	}
	check("empty", nil)
	check("garbage", []byte("this is not a snapshot at all, no really"))
	check("other format version", append([]byte("QMVCCv2\n"), data[8:]...))
	for n := 0; n < len(data); n++ {
		check("truncated", data[:n])
	}
	for i := range data {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(data)
			c[i] ^= x
			check("flipped", c)
		}
	}
	check("trailing byte", append(bytes.Clone(data), 0))
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.Intn(100))
		rng.Read(b)
		check("random", append([]byte(snapMagic), b...))
	}
}

// A checksum-valid snapshot whose content breaks the store's invariants is
// rejected too.
func TestRestoreRejectsInvalidState(t *testing.T) {
	encode := func(f func(e *snapEncoder)) []byte {
		var buf bytes.Buffer
		e := &snapEncoder{}
		e.bw = bufio.NewWriter(&buf)
		e.write([]byte(snapMagic))
		f(e)
		sum := []byte{byte(e.crc >> 24), byte(e.crc >> 16), byte(e.crc >> 8), byte(e.crc)}
		e.bw.Write(sum)
		e.bw.Flush()
		return buf.Bytes()
	}
	put := func(e *snapEncoder, main, sub, create, version int64) {
		e.uvarint(uint64(main))
		e.uvarint(uint64(sub))
		e.write([]byte{0})
		e.uvarint(uint64(create))
		e.uvarint(uint64(version))
		e.varint(0)
		e.bytes([]byte("v"))
	}
	tomb := func(e *snapEncoder, main, sub int64) {
		e.uvarint(uint64(main))
		e.uvarint(uint64(sub))
		e.write([]byte{1})
	}
	valid := encode(func(e *snapEncoder) {
		e.varint(5)
		e.varint(2)
		e.uvarint(1)
		e.bytes([]byte("a"))
		e.uvarint(2)
		put(e, 2, 0, 2, 1)
		tomb(e, 3, 0)
	})
	if _, err := Restore(bytes.NewReader(valid)); err != nil {
		t.Fatalf("valid hand-made snapshot: %v", err)
	}
	for name, data := range map[string][]byte{
		"revision above current": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(-1)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(1)
			put(e, 6, 0, 6, 1)
		}),
		"compaction above current": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(6)
			e.uvarint(0)
		}),
		"keys out of order": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(-1)
			e.uvarint(2)
			e.bytes([]byte("b"))
			e.uvarint(1)
			put(e, 2, 0, 2, 1)
			e.bytes([]byte("a"))
			e.uvarint(1)
			put(e, 3, 0, 3, 1)
		}),
		"revisions out of order": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(-1)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(2)
			put(e, 3, 0, 3, 1)
			put(e, 2, 0, 2, 1)
		}),
		"key without revisions": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(-1)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(0)
		}),
		"compacted history left": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(3)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(2)
			put(e, 2, 0, 2, 1)
			put(e, 3, 0, 2, 2)
		}),
		"tombstone at or below compaction": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(3)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(1)
			tomb(e, 3, 0)
		}),
		"zero version": encode(func(e *snapEncoder) {
			e.varint(5)
			e.varint(-1)
			e.uvarint(1)
			e.bytes([]byte("a"))
			e.uvarint(1)
			put(e, 2, 0, 2, 0)
		}),
	} {
		if _, err := Restore(bytes.NewReader(data)); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: %v, want ErrCorruptSnapshot", name, err)
		}
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestRestoreReaderError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Restore(io.MultiReader(bytes.NewReader([]byte(snapMagic)), failingReader{boom})); !errors.Is(err, boom) {
		t.Errorf("got %v, want the reader's error", err)
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(snapshot(f, New().View()))
	f.Add(snapshot(f, randomStore(f, 1, 100).View()))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Restore(bytes.NewReader(data))
		if err != nil {
			return
		}
		if again := snapshot(t, s.View()); !bytes.Equal(again, data) {
			t.Errorf("restored snapshot re-encodes differently")
		}
		// The restored store must be usable.
		s.Put(&pb.PutRequest{Key: []byte("k")})
		s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	})
}

// Restore reads through its own buffer: the same snapshot restores alike
// through readers that return one byte at a time, or their error together
// with the last bytes, and corruption is still found through them.
func TestRestoreThroughAwkwardReaders(t *testing.T) {
	data := snapshot(t, randomStore(t, 7, 3000).View())
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"one byte":          iotest.OneByteReader,
		"error with data":   iotest.DataErrReader,
		"half":              iotest.HalfReader,
		"one byte, err too": func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) },
	} {
		s, err := Restore(wrap(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if again := snapshot(t, s.View()); !bytes.Equal(again, data) {
			t.Errorf("%s: restored store re-encodes differently", name)
		}
		bad := bytes.Clone(data)
		bad[len(bad)/2] ^= 0x10
		if _, err := Restore(wrap(bytes.NewReader(bad))); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: a flipped bit gave %v", name, err)
		}
		if _, err := Restore(wrap(bytes.NewReader(append(bytes.Clone(data), 'x')))); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("%s: a trailing byte gave %v", name, err)
		}
	}
}
