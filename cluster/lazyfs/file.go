package lazyfs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// file is an open handle of a lazy file: reads overlay the file's unsynced
// pages on the backing file; writes go to the pages; fsync writes them
// back. A handle opened O_SYNC or O_DSYNC syncs after every write.
type file struct {
	fd    int
	ino   uint64
	fs    *FS
	inode *fs.Inode
	sync  bool
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
)

func (f *file) state(create bool) (*fileState, syscall.Errno) {
	s, err := f.fs.state(f.ino, f.fd, f.inode, create)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return s, 0
}

// page returns page p of s, loading it from the backing file when it is
// not dirty yet. s.mu is held.
func (f *file) page(s *fileState, p int64) ([]byte, syscall.Errno) {
	if pg, ok := s.pages[p]; ok {
		return pg, 0
	}
	pg := make([]byte, pageSize)
	if err := f.readBacking(pg, p*pageSize, s.size); err != 0 {
		return nil, err
	}
	s.pages[p] = pg
	return pg, 0
}

// readBacking fills buf from the backing file at off, with zeros past its
// end, never reading past the logical size (a truncated tail may still be
// in the backing file).
func (f *file) readBacking(buf []byte, off, size int64) syscall.Errno {
	clear(buf)
	n := int64(len(buf))
	if off+n > size {
		n = max(size-off, 0)
	}
	for done := int64(0); done < n; {
		m, err := unix.Pread(f.fd, buf[done:n], off+done)
		if err != nil {
			return fs.ToErrno(err)
		}
		if m == 0 {
			break
		}
		done += int64(m)
	}
	return 0
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	s, errno := f.state(false)
	if errno != 0 {
		return nil, errno
	}
	if s == nil {
		n, err := unix.Pread(f.fd, dest, off)
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if off >= s.size {
		return fuse.ReadResultData(nil), 0
	}
	n := min(int64(len(dest)), s.size-off)
	out := dest[:n]
	for done := int64(0); done < n; {
		pos := off + done
		p, in := pos/pageSize, pos%pageSize
		chunk := min(pageSize-in, n-done)
		if pg, ok := s.pages[p]; ok {
			copy(out[done:done+chunk], pg[in:in+chunk])
		} else if errno := f.readBacking(out[done:done+chunk], pos, s.size); errno != 0 {
			return nil, errno
		}
		done += chunk
	}
	return fuse.ReadResultData(out), 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	s, errno := f.state(true)
	if errno != 0 {
		return 0, errno
	}
	s.mu.Lock()
	for done := int64(0); done < int64(len(data)); {
		pos := off + done
		p, in := pos/pageSize, pos%pageSize
		pg, errno := f.page(s, p)
		if errno != 0 {
			s.mu.Unlock()
			return uint32(done), errno
		}
		done += int64(copy(pg[in:], data[done:]))
	}
	s.size = max(s.size, off+int64(len(data)))
	s.mu.Unlock()
	if f.sync {
		if errno := f.Fsync(ctx, 0); errno != 0 {
			return 0, errno
		}
	}
	return uint32(len(data)), 0
}

// truncate sets the logical size, zeroing what a later extension would
// expose.
func (f *file) truncate(size int64) syscall.Errno {
	s, errno := f.state(true)
	if errno != 0 {
		return errno
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if size < s.size {
		last := size / pageSize
		for p := range s.pages {
			if p > last || (p == last && size%pageSize == 0) {
				delete(s.pages, p)
			}
		}
		if size%pageSize != 0 {
			pg, errno := f.page(s, last)
			if errno != 0 {
				return errno
			}
			clear(pg[size%pageSize:])
		}
	}
	s.size = size
	return 0
}

// Fsync writes the file's unsynced pages and size to the backing file and
// syncs it (fsync and fdatasync alike).
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	s, errno := f.state(false)
	if errno != 0 {
		return errno
	}
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		for p, pg := range s.pages {
			off := p * pageSize
			if off >= s.size {
				continue
			}
			n := min(int64(pageSize), s.size-off)
			if _, err := unix.Pwrite(f.fd, pg[:n], off); err != nil {
				return fs.ToErrno(err)
			}
		}
		if err := unix.Ftruncate(f.fd, s.size); err != nil {
			return fs.ToErrno(err)
		}
		clear(s.pages)
	}
	if err := unix.Fsync(f.fd); err != nil {
		return fs.ToErrno(err)
	}
	return 0
}

// Flush (close(2) of one descriptor) syncs nothing: closing a file does
// not make it durable.
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (f *file) Release(ctx context.Context) syscall.Errno {
	if f.fd < 0 {
		return syscall.EBADF
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return fs.ToErrno(err)
}

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(f.fd, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	f.fs.fixSize(st.Ino, &out.Attr)
	return 0
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		if errno := f.truncate(int64(sz)); errno != 0 {
			return errno
		}
	}
	if m, ok := in.GetMode(); ok {
		if err := unix.Fchmod(f.fd, m); err != nil {
			return fs.ToErrno(err)
		}
	}
	return f.Getattr(ctx, out)
}

// Allocate reserves space in the backing file (metadata, done at once)
// and, unless it keeps the size, extends the logical size.
func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if err := unix.Fallocate(f.fd, mode, int64(off), int64(size)); err != nil {
		return fs.ToErrno(err)
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 {
		s, errno := f.state(true)
		if errno != 0 {
			return errno
		}
		s.mu.Lock()
		s.size = max(s.size, int64(off+size))
		s.mu.Unlock()
	}
	return 0
}

func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	// SEEK_DATA/SEEK_HOLE on the logical file: the whole file is data.
	s, errno := f.state(false)
	if errno != 0 {
		return 0, errno
	}
	size := int64(-1)
	if s != nil {
		s.mu.Lock()
		size = s.size
		s.mu.Unlock()
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(f.fd, &st); err != nil {
			return 0, fs.ToErrno(err)
		}
		size = st.Size
	}
	if int64(off) >= size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		return off, 0
	case unix.SEEK_HOLE:
		return uint64(size), 0
	}
	return 0, syscall.EINVAL
}
