package lazyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func mount(t *testing.T) (*FS, string, string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("lazyfs cannot mount here: %v", err)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := Mount(backing, mnt)
	if err != nil {
		t.Skipf("lazyfs cannot mount here (needs /dev/fuse and the right to mount): %v", err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f, backing, mnt
}

func write(t *testing.T, f *os.File, off int64, data string) {
	t.Helper()
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// What was fsynced survives a drop; what was written after it does not,
// reads before the drop see everything, and the size is the logical one.
func TestDropLosesExactlyTheUnsynced(t *testing.T) {
	lfs, backing, mnt := mount(t)
	p := filepath.Join(mnt, "wal")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	synced := bytes.Repeat([]byte("s"), 5000) // crosses a page boundary
	write(t, f, 0, string(synced))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	write(t, f, 5000, "unsynced-tail")
	write(t, f, 10, "OVER") // an unsynced overwrite of synced data
	want := string(synced[:10]) + "OVER" + string(synced[14:]) + "unsynced-tail"
	if got := content(t, p); got != want {
		t.Fatalf("before the drop read %d bytes, want %d (the unsynced writes visible)", len(got), len(want))
	}
	if st, _ := os.Stat(p); st.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", st.Size(), len(want))
	}
	if got := content(t, filepath.Join(backing, "wal")); got != string(synced) {
		t.Fatalf("backing file holds %d bytes, want only the %d synced", len(got), len(synced))
	}
	if u := lfs.Unsynced(); u.Files != 1 || u.Pages == 0 {
		t.Fatalf("Unsynced = %+v, want 1 file with pages", u)
	}
	f.Close()
	st := lfs.DropUnsynced()
	if st.Files != 1 || st.Pages != 2 {
		t.Fatalf("DropUnsynced = %+v, want 1 file, 2 pages (page 0 overwritten, page 1 extended)", st)
	}
	if got := content(t, p); got != string(synced) {
		t.Fatalf("after the drop read %q..., %d bytes; want the %d synced bytes", got[:min(20, len(got))], len(got), len(synced))
	}
}

// Metadata goes through at once: a created, renamed, never-synced file is
// there after a drop, empty; truncation is lazy like data.
func TestMetadataSurvivesDataDoesNot(t *testing.T) {
	lfs, _, mnt := mount(t)
	tmp, final := filepath.Join(mnt, "snap.tmp"), filepath.Join(mnt, "snap")
	if err := os.WriteFile(tmp, []byte("never synced"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(mnt, "keep")
	f, err := os.Create(keep)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, 0, "0123456789")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if got := content(t, keep); got != "0123" {
		t.Fatalf("after an unsynced truncate read %q, want 0123", got)
	}
	f.Close()
	lfs.DropUnsynced()
	if got := content(t, final); got != "" {
		t.Fatalf("renamed unsynced file holds %q after the drop, want it empty", got)
	}
	if got := content(t, keep); got != "0123456789" {
		t.Fatalf("after the drop read %q, want the synced 0123456789 (the truncate was not synced)", got)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the rename was lost: %v", err)
	}
}

// A file opened O_SYNC is durable at every write.
func TestOSyncWritesAreDurable(t *testing.T) {
	lfs, _, mnt := mount(t)
	p := filepath.Join(mnt, "sync")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_SYNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f, 0, "durable")
	f.Close()
	lfs.DropUnsynced()
	if got := content(t, p); got != "durable" {
		t.Fatalf("O_SYNC write lost: read %q", got)
	}
}

// One mount holding several members' directories: a drop under one loses
// only that member's unsynced data, renames within it included.
func TestDropUnderOneDirectoryOnly(t *testing.T) {
	lfs, _, mnt := mount(t)
	for _, d := range []string{"n1/wal", "n2/wal"} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"n1", "n2"} {
		tmp := filepath.Join(mnt, n, "wal", "seg.tmp")
		if err := os.WriteFile(tmp, []byte("unsynced "+n), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(mnt, n, "wal", "seg")); err != nil {
			t.Fatal(err)
		}
	}
	if st := lfs.DropUnsyncedUnder("n1"); st.Files != 1 {
		t.Fatalf("DropUnsyncedUnder(n1) = %+v, want 1 file", st)
	}
	if got := content(t, filepath.Join(mnt, "n1", "wal", "seg")); got != "" {
		t.Fatalf("n1 kept %q", got)
	}
	if got := content(t, filepath.Join(mnt, "n2", "wal", "seg")); got != "unsynced n2" {
		t.Fatalf("n2 lost its data: %q", got)
	}
}

// A directory that a process holds open (as a member does to fsync its WAL
// directory) can still be stat'ed: go-fuse hands the directory's open
// handle to Getattr, which is not a lazy file. It used to panic in the
// FUSE server (recovered, answered EIO), so a member's stat of its own
// data directory could fail.
func TestStatOfAnOpenDirectory(t *testing.T) {
	_, _, mnt := mount(t)
	dir := filepath.Join(mnt, "member", "wal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync of the open directory: %v", err)
	}
	for _, stat := range []func() (os.FileInfo, error){d.Stat, func() (os.FileInfo, error) { return os.Stat(dir) }} {
		fi, err := stat()
		if err != nil {
			t.Fatalf("stat of the open directory: %v", err)
		}
		if !fi.IsDir() {
			t.Fatalf("stat of %s: mode %v, want a directory", dir, fi.Mode())
		}
	}
}
