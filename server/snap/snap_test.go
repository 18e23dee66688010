package snap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func snapshot(term, index uint64, data string) raftpb.Snapshot {
	return raftpb.Snapshot{
		Data: []byte(data),
		Metadata: raftpb.SnapshotMetadata{
			Term: term, Index: index,
			ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}},
		},
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestSaveThenLoadNewestRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name string
		snap raftpb.Snapshot
	}{
		{"small", snapshot(2, 10, "state machine")},
		{"empty data", raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Term: 1, Index: 1}}},
		{"larger than the write buffer", snapshot(3, 1<<40, strings.Repeat("0123456789", 100_000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap")
			if err := Save(dir, tc.snap); err != nil {
				t.Fatal(err)
			}
			got, err := LoadNewest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metadata, tc.snap.Metadata) || !bytes.Equal(got.Data, tc.snap.Data) {
				t.Fatalf("loaded %+v", got.Metadata)
			}
			want := []string{Name(tc.snap.Metadata.Term, tc.snap.Metadata.Index)}
			if n := names(t, dir); !reflect.DeepEqual(n, want) {
				t.Fatalf("directory holds %v, want %v (no temp files)", n, want)
			}
		})
	}
}

func TestLoadNewestPicksTheHighestIndex(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []raftpb.Snapshot{snapshot(5, 100, "c"), snapshot(1, 5, "a"), snapshot(3, 99, "b")} {
		if err := Save(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a snapshot"), 0o600)
	got, err := LoadNewest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Index != 100 || string(got.Data) != "c" {
		t.Fatalf("newest = %d %q", got.Metadata.Index, got.Data)
	}
}

func TestLoadNewestOfNoSnapshotsIsNil(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		got, err := LoadNewest(dir)
		if got != nil || err != nil {
			t.Fatalf("LoadNewest(%s) = %v, %v", dir, got, err)
		}
	}
}

func TestSaveRejectsAnEmptySnapshot(t *testing.T) {
	if err := Save(t.TempDir(), raftpb.Snapshot{}); err == nil {
		t.Fatal("saved an empty snapshot")
	}
}

// TestCorruptNewestIsAnErrorNamingTheFile damages the newest snapshot in
// every way a byte can be damaged; LoadNewest must fail and name that file,
// never return the older, intact snapshot.
func TestCorruptNewestIsAnErrorNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, snapshot(1, 10, "older")); err != nil {
		t.Fatal(err)
	}
	newest := snapshot(2, 20, "newest state")
	if err := Save(dir, newest); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, Name(2, 20))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, what string) {
		t.Helper()
		got, err := LoadNewest(dir)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || got != nil {
			t.Fatalf("%s: LoadNewest = %v, %v; want ErrCorrupt naming %s", what, got, err, path)
		}
	}
	t.Run("flipped byte at every offset", func(t *testing.T) {
		for off := range good {
			b := bytes.Clone(good)
			b[off] ^= 0x10
			os.WriteFile(path, b, 0o600)
			check(t, fmt.Sprintf("flip at offset %d", off))
		}
	})
	t.Run("truncated at every length", func(t *testing.T) {
		for n := range len(good) {
			os.WriteFile(path, good[:n], 0o600)
			check(t, fmt.Sprintf("truncated to %d bytes", n))
		}
	})
	t.Run("trailing garbage", func(t *testing.T) {
		os.WriteFile(path, append(bytes.Clone(good), 0), 0o600)
		check(t, "trailing byte")
	})
	t.Run("renamed to another index", func(t *testing.T) {
		os.WriteFile(path, good, 0o600)
		os.Rename(path, filepath.Join(dir, Name(2, 30)))
		path = filepath.Join(dir, Name(2, 30))
		check(t, "renamed")
	})
}

func TestPurgeKeepsTheNewestAndRemoveTempRemovesTempFiles(t *testing.T) {
	dir := t.TempDir()
	for i := uint64(1); i <= 5; i++ {
		if err := Save(dir, snapshot(1, i*10, "x")); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, Name(1, 60)+".123.tmp"), []byte("partial"), 0o600)
	os.WriteFile(filepath.Join(dir, "unrelated"), nil, 0o600)
	if err := Purge(dir, 2); err != nil {
		t.Fatal(err)
	}
	// A temp file may be a Save in progress: Purge leaves it.
	if got, want := names(t, dir), []string{Name(1, 40), Name(1, 50), Name(1, 60) + ".123.tmp", "unrelated"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after Purge(2): %v, want %v", got, want)
	}
	if err := RemoveTemp(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{Name(1, 40), Name(1, 50), "unrelated"}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after RemoveTemp: %v, want %v", got, want)
	}
	if err := Purge(dir, 5); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("Purge with more to keep than present removed files: %v", got)
	}
	if err := Purge(dir, 0); err == nil {
		t.Fatal("Purge(0) accepted")
	}
}

func TestCreateWritesWhatSaveWrites(t *testing.T) {
	for _, data := range []string{"", "x", strings.Repeat("quorum", 200_000)} {
		want := snapshot(3, 70, data)
		saved, created := t.TempDir(), t.TempDir()
		if err := Save(saved, want); err != nil {
			t.Fatal(err)
		}
		n, err := Create(created, want.Metadata, func(w io.Writer) error {
			// In uneven pieces, as an encoder would.
			for b := []byte(data); len(b) > 0; {
				k := min(len(b), 7777)
				if _, err := w.Write(b[:k]); err != nil {
					return err
				}
				b = b[k:]
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(data)) {
			t.Fatalf("Create returned %d bytes, wrote %d", n, len(data))
		}
		a, _ := os.ReadFile(filepath.Join(saved, Name(3, 70)))
		b, _ := os.ReadFile(filepath.Join(created, Name(3, 70)))
		if !bytes.Equal(a, b) {
			t.Fatalf("%d bytes of data: Create's file differs from Save's", len(data))
		}
		got, err := LoadNewest(created)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Metadata, want.Metadata) || string(got.Data) != data {
			t.Fatalf("loaded %v with %d bytes, want %v with %d", got.Metadata, len(got.Data), want.Metadata, len(data))
		}
		if got := names(t, created); len(got) != 1 {
			t.Fatalf("files after Create: %v", got)
		}
	}
}

func TestCreateThatFailsLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("encoder failed")
	_, err := Create(dir, snapshot(1, 5, "").Metadata, func(w io.Writer) error {
		w.Write([]byte("half a snapshot"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Fatalf("files after a failed Create: %v", got)
	}
	if _, err := Create(dir, raftpb.SnapshotMetadata{}, func(io.Writer) error { return nil }); err == nil {
		t.Fatal("Create at index 0 accepted")
	}
}
