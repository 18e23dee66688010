package etcdbolt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/quorum-kv/quorum/server/mvcc"
)

// etcdFile is a snapshot saved by etcdctl from etcd 3.6.16 (puts, a txn,
// deletes, a compaction at 3, a lease with two keys, auth users and a
// role); etcdFileHash is `etcdutl snapshot status -w json`'s hash of it.
const (
	etcdFile     = "testdata/etcd-3.6.16.db"
	etcdFileHash = 1961258441
)

// dumpSink records the stream as text, for comparing streams.
type dumpSink struct{ buf bytes.Buffer }

func (d *dumpSink) Bucket(name []byte) error {
	d.buf.WriteString("[" + string(name) + "]\n")
	return nil
}
func (d *dumpSink) Put(k, v []byte) error {
	fmt.Fprintf(&d.buf, "%q=%q\n", k, v)
	return nil
}

// rawDump is the file's buckets and pairs as bolt holds them.
func rawDump(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var d dumpSink
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			d.Bucket(name)
			return b.ForEach(func(k, v []byte) error { return d.Put(k, v) })
		})
	})
	return d.buf.String()
}

func openBackend(t *testing.T, path string) (*File, *Backend) {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	b, err := f.Backend()
	if err != nil {
		t.Fatal(err)
	}
	return f, b
}

// Reading etcd's file and emitting it again gives back every bucket, key
// and value byte for byte: the reader and the encoders are etcd's schema.
func TestReadEmitReproducesEtcdFile(t *testing.T) {
	_, b := openBackend(t, etcdFile)
	var d dumpSink
	if err := b.Emit(&d); err != nil {
		t.Fatal(err)
	}
	if want := rawDump(t, etcdFile); d.buf.String() != want {
		t.Fatalf("emitted stream differs from the file\ngot:\n%s\nwant:\n%s", d.buf.String(), want)
	}
	h, err := Hash(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h != etcdFileHash {
		t.Fatalf("hash %d, etcdutl's %d", h, etcdFileHash)
	}
}

// WriteFile of what was read writes a file with the same contents.
func TestWriteFileRoundTrip(t *testing.T) {
	_, b := openBackend(t, etcdFile)
	out := filepath.Join(t.TempDir(), "out.db")
	if err := WriteFile(out, b); err != nil {
		t.Fatal(err)
	}
	if got, want := rawDump(t, out), rawDump(t, etcdFile); got != want {
		t.Fatalf("written file differs\ngot:\n%s\nwant:\n%s", got, want)
	}
	if err := WriteFile(out, b); err == nil {
		t.Fatal("WriteFile over an existing file succeeded")
	}
}

// The keyspace read from etcd's file builds a store that answers as etcd did.
func TestKeyspaceBuildsStore(t *testing.T) {
	_, b := openBackend(t, etcdFile)
	bl := mvcc.NewBuilder()
	if err := b.Keyspace(bl.Add); err != nil {
		t.Fatal(err)
	}
	s, err := bl.Finish(b.CompactRev)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rev() != 13 || s.CompactRev() != 3 {
		t.Fatalf("rev %d compact %d, want 13 and 3", s.Rev(), s.CompactRev())
	}
	if len(b.Leases) != 1 || b.Leases[0].ID != 0x390da2362dc0d214 || b.Leases[0].TTL != 100000 {
		t.Fatalf("leases %v", b.Leases)
	}
	if len(b.Users) != 2 || len(b.Roles) != 1 || b.AuthRevision != 6 {
		t.Fatalf("auth: users %d roles %d revision %d", len(b.Users), len(b.Roles), b.AuthRevision)
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(etcdFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noBuckets := filepath.Join(dir, "nobuckets.db")
	db, err := bolt.Open(noBuckets, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	db.Close()
	sum := sha256.Sum256(data)
	for name, path := range map[string]string{
		"not bbolt":  write("text.db", bytes.Repeat([]byte("not a database\n"), 1000)),
		"truncated":  write("trunc.db", data[:len(data)/2]),
		"no buckets": noBuckets,
		"too small":  write("small.db", data[:100]),
		"with hash":  "",
	} {
		if path == "" {
			// etcdctl's trailing sha256 is not part of bolt's pages.
			p := write("hashed.db", append(append([]byte{}, data...), sum[:]...))
			if f, err := Open(p); err != nil {
				t.Errorf("%s: %v", name, err)
			} else {
				f.Close()
			}
			continue
		}
		_, err := Open(path)
		if err == nil {
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if !bytes.Contains([]byte(err.Error()), []byte(path)) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		if name != "too small" && !errors.Is(err, ErrNotBackend) {
			t.Errorf("%s: error %q is not ErrNotBackend", name, err)
		}
	}
}
