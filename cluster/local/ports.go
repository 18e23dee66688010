package local

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// portSet is a cluster's member ports and the locks that reserve them.
type portSet struct {
	ports []int
	locks []*os.File
}

// release drops the reservations (the ports stay whatever they are).
func (s *portSet) release() {
	if s == nil {
		return
	}
	for _, f := range s.locks {
		if f != nil {
			f.Close() // closing the file releases its flock
		}
	}
	s.locks = nil
}

// portLockDir holds one lock file per reserved port, shared by every
// harness process on the machine.
func portLockDir() string { return filepath.Join(os.TempDir(), "quorum-ports") }

// reservePorts returns k distinct ports on host, drawn from rng below the
// kernel's ephemeral port range (which it uses for ":0" listeners and for
// the source ports of outgoing connections, so nothing takes them by
// chance), each free to bind when drawn and reserved by an exclusive flock
// on a file in portLockDir until release. The locks keep concurrent
// harness processes — test packages in parallel, runs with the same seed —
// off each other's ports for the clusters' whole life, also while a
// member is down between a kill and its restart; a process that dies
// drops its locks with it. The draw is a function of rng, so a run's seed
// gives the same ports when nothing else holds them. If the ephemeral
// range leaves too little room below it, it falls back to ":0" ports,
// unreserved.
func reservePorts(host string, k int, rng *rand.Rand) (*portSet, error) {
	s := &portSet{}
	lo, hi := 10000, ephemeralLow()
	if err := os.MkdirAll(portLockDir(), 0o777); err != nil {
		return nil, fmt.Errorf("local: port reservations: %w", err)
	}
	seen := map[int]bool{}
	for tries := 0; len(s.ports) < k && hi-lo >= 1000 && tries < 100*k; tries++ {
		p := lo + rng.IntN(hi-lo)
		if seen[p] {
			continue
		}
		seen[p] = true
		lock, ok := lockPort(p)
		if !ok {
			continue // another harness process holds it
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			if lock != nil {
				lock.Close()
			}
			continue // taken: try another
		}
		ln.Close()
		s.ports = append(s.ports, p)
		s.locks = append(s.locks, lock)
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(s.ports) < k {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			s.release()
			return nil, fmt.Errorf("local: find a free port on %s: %w", host, err)
		}
		lns = append(lns, ln)
		s.ports = append(s.ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return s, nil
}

// lockPort takes the reservation of port p without waiting; ok is false
// when another process (or another cluster of this one) holds it. Where
// the lock file cannot be opened at all (a lock directory of another user),
// the port is used unreserved: lock is nil and ok true.
func lockPort(p int) (lock *os.File, ok bool) {
	f, err := os.OpenFile(filepath.Join(portLockDir(), strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}
