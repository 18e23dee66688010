// Package lazyfs is a FUSE file system, in the manner of LazyFS, that keeps
// every write in memory until the file is fsynced, so that a test can lose
// exactly what a process had not made durable: kill the process, call
// DropUnsynced, restart it, and it finds its files as a power cut would
// have left them.
//
// It mirrors a backing directory (a loopback file system, go-fuse's). File
// data written through the mount (write, truncate, fallocate beyond the
// end) is held per file, in 4 KiB pages, until fsync or fdatasync of any
// handle of that file writes the file's pages to the backing file and
// syncs it. Reads see the unsynced data. Metadata operations (create,
// mkdir, rename, unlink, link) go to the backing directory at once, so a
// file created and never synced survives a drop as an empty file and a
// rename is never lost: the fault this models is the page cache lost on
// power failure on a file system that orders metadata (ext4's
// data=ordered), not a torn directory.
//
// Mounting needs /dev/fuse and permission to mount (root, or fusermount);
// Available reports whether this machine can.
package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const pageSize = 4096

// FS is one mounted lazy file system.
type FS struct {
	mountpoint string
	server     *fuse.Server

	mu    sync.Mutex
	files map[uint64]*fileState // by backing inode number
}

// fileState is a file's unsynced data: its logical size and the pages
// written since the last sync. mu guards it; FS.mu guards the map.
type fileState struct {
	mu    sync.Mutex
	size  int64
	pages map[int64][]byte
	inode *fs.Inode // for invalidating the kernel's cache on a drop
	// top is the first component of the file's path under the root when
	// its state was made (a member's directory when the mount holds
	// several): DropUnsyncedUnder drops by it.
	top string
}

// Stats says what a DropUnsynced threw away.
type Stats struct {
	Files int   // files that had unsynced data
	Pages int   // 4 KiB pages dropped
	Bytes int64 // bytes of unsynced data (pages counted whole)
}

// Available returns nil if this machine can mount lazyfs: /dev/fuse exists
// and the process is root or has fusermount3/fusermount. Otherwise the
// error says what is missing.
func Available() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("lazyfs needs /dev/fuse: %w", err)
	}
	if os.Geteuid() == 0 {
		return nil
	}
	for _, bin := range []string{"fusermount3", "fusermount"} {
		if _, err := exec.LookPath(bin); err == nil {
			return nil
		}
	}
	return errors.New("lazyfs needs root or fusermount3/fusermount to mount")
}

// Mount mounts a lazy mirror of the directory backing at mountpoint (both
// must exist). Unmount it when done.
func Mount(backing, mountpoint string) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: backing directory %s: %w", backing, err)
	}
	f := &FS{mountpoint: mountpoint, files: make(map[uint64]*fileState)}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	rootNode := &node{LoopbackNode: &fs.LoopbackNode{RootData: root}, fs: f}
	root.RootNode = rootNode
	zero := time.Duration(0)
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		// No attribute or entry caching: a file's size is the logical
		// one, which only this process knows.
		AttrTimeout:     &zero,
		EntryTimeout:    &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:             "lazyfs",
			Name:               "lazyfs",
			DisableXAttrs:      true,
			DisableReadDirPlus: true,
			// Any user's processes may use it (containers, other uids).
			AllowOther: os.Geteuid() == 0,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s on %s: %w", backing, mountpoint, err)
	}
	f.server = server
	return f, nil
}

// Mountpoint is where the file system is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Unmount unmounts the file system. Unsynced data is dropped, as at a
// power cut: sync first to keep it. Processes must have closed their files
// (a busy mount fails to unmount, with the error).
func (f *FS) Unmount() error {
	f.DropUnsynced()
	var err error
	for i := 0; i < 50; i++ {
		if err = f.server.Unmount(); err == nil {
			f.server.Wait()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("lazyfs: unmount %s: %w", f.mountpoint, err)
}

// DropUnsynced throws away every write not yet fsynced, as a power cut
// would. Call it only while no process writes (after killing them); a
// write racing with it may or may not survive.
func (f *FS) DropUnsynced() Stats { return f.DropUnsyncedUnder("") }

// DropUnsyncedUnder throws away the unsynced writes of the files under
// the top-level directory top of the mount ("" for every file), as a
// power cut of one machine whose disk is that directory would. Files are
// attributed to the top-level directory they were first written in
// (renames within it keep it). As DropUnsynced, call it while nothing
// writes there.
func (f *FS) DropUnsyncedUnder(top string) Stats {
	f.mu.Lock()
	files := make(map[uint64]*fileState)
	for ino, s := range f.files {
		if top == "" || s.top == top {
			files[ino] = s
			delete(f.files, ino)
		}
	}
	f.mu.Unlock()
	var st Stats
	for _, s := range files {
		s.mu.Lock()
		if len(s.pages) > 0 {
			st.Files++
		}
		st.Pages += len(s.pages)
		st.Bytes += int64(len(s.pages)) * pageSize
		s.pages = nil
		in := s.inode
		s.mu.Unlock()
		if in != nil {
			// Let the kernel forget the pages it cached from us.
			in.NotifyContent(0, 0)
		}
	}
	return st
}

// Unsynced returns how much unsynced data the file system holds now.
func (f *FS) Unsynced() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st Stats
	for _, s := range f.files {
		s.mu.Lock()
		if len(s.pages) > 0 {
			st.Files++
			st.Pages += len(s.pages)
			st.Bytes += int64(len(s.pages)) * pageSize
		}
		s.mu.Unlock()
	}
	return st
}

// state returns the unsynced state of the file with backing inode ino,
// creating it (with the backing file's size, from fd) if create is set;
// nil if there is none and create is not set.
func (f *FS) state(ino uint64, fd int, in *fs.Inode, create bool) (*fileState, error) {
	top := ""
	if in != nil && create {
		top, _, _ = strings.Cut(in.Path(nil), "/")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.files[ino]
	if s == nil && create {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, err
		}
		s = &fileState{size: st.Size, pages: make(map[int64][]byte), top: top}
		f.files[ino] = s
	}
	if s != nil && in != nil && s.inode == nil {
		s.inode = in
	}
	return s, nil
}

func (f *FS) forget(ino uint64) {
	f.mu.Lock()
	delete(f.files, ino)
	f.mu.Unlock()
}

// node is a loopback node whose files are lazy.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
)

// WrapChild makes every node of the tree a lazy one.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, fs: n.fs}
	}
	return ops
}

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	fd, err := unix.Open(n.backingPath(), int(flags)&^(unix.O_SYNC|unix.O_DSYNC)|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	return n.newFile(fd, flags), 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	in, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	// Replace the loopback handle with a lazy one over a new descriptor.
	p := filepath.Join(n.backingPath(), name)
	fd, err := unix.Open(p, int(flags)&^(unix.O_SYNC|unix.O_DSYNC|unix.O_CREAT|unix.O_EXCL|unix.O_TRUNC|syscall.O_APPEND)|unix.O_CLOEXEC, 0)
	if rel, ok := fh.(fs.FileReleaser); ok {
		rel.Release(ctx)
	}
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	child, _ := in.Operations().(*node)
	f := child.newFile(fd, flags)
	return in, f, fuseFlags, 0
}

func (n *node) newFile(fd int, flags uint32) *file {
	var st unix.Stat_t
	_ = unix.Fstat(fd, &st)
	return &file{fd: fd, ino: st.Ino, fs: n.fs, inode: n.EmbeddedInode(),
		sync: flags&(unix.O_SYNC|unix.O_DSYNC) != 0}
}

// Lookup and Getattr report the logical size of a file with unsynced data.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	in, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		n.fs.fixSize(out.Attr.Ino, &out.Attr)
	}
	return in, errno
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	// fh may be any open handle of the node, a directory's too: go-fuse
	// passes one when the kernel gives none. Only a lazy file's knows more
	// than the path does.
	if f, ok := fh.(*file); ok {
		return f.Getattr(ctx, out)
	}
	if errno := n.LoopbackNode.Getattr(ctx, nil, out); errno != 0 {
		return errno
	}
	n.fs.fixSize(out.Attr.Ino, &out.Attr)
	return 0
}

// Setattr makes a truncation lazy; everything else goes through.
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		f, _ := fh.(*file)
		if f == nil {
			fd, err := unix.Open(n.backingPath(), unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return fs.ToErrno(err)
			}
			f = n.newFile(fd, 0)
			defer f.Release(ctx)
		}
		if errno := f.truncate(int64(sz)); errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	if in.Valid&^(fuse.FATTR_FH|fuse.FATTR_LOCKOWNER) != 0 {
		// The loopback node applies the rest by path.
		if errno := n.LoopbackNode.Setattr(ctx, nil, in, out); errno != 0 {
			return errno
		}
	}
	return n.Getattr(ctx, fh, out)
}

// Unlink forgets the unsynced data of a file whose last name goes.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	var st unix.Stat_t
	p := filepath.Join(n.backingPath(), name)
	statErr := unix.Lstat(p, &st)
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		return errno
	}
	if statErr == nil && st.Nlink <= 1 {
		n.fs.forget(st.Ino)
	}
	return 0
}

func (f *FS) fixSize(ino uint64, a *fuse.Attr) {
	f.mu.Lock()
	s := f.files[ino]
	f.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	a.Size = uint64(s.size)
	a.Blocks = (a.Size + 511) / 512
	s.mu.Unlock()
}
