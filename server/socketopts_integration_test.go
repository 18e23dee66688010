package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bindReusePort binds addr with SO_REUSEPORT, as a second server sharing
// the port would, and closes it at once.
func bindReusePort(addr string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// --socket-reuse-port sets SO_REUSEPORT on the member's listeners, as
// etcd's: another socket with the option may bind the client and the peer
// port while the member serves; without the flag it may not.
func TestSocketReusePortSharesTheListeners(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		t.Run(fmt.Sprintf("reuse-port=%v", reuse), func(t *testing.T) {
			p, curls := startQuorumd(t, 1, fmt.Sprintf("--socket-reuse-port=%v", reuse))
			eventually(t, 15*time.Second, "serving", func() error {
				if !strings.Contains(p.log(), "ready to serve client requests") {
					return errors.New("not yet")
				}
				return nil
			})
			if reuse != strings.Contains(p.log(), `"msg":"configuring socket options"`) {
				t.Errorf("the \"configuring socket options\" line is logged iff an option is set (reuse %v)", reuse)
			}
			peer := peerURLOf(t, p.log())
			for _, addr := range []string{strings.TrimPrefix(curls[0], "http://"), peer} {
				err := bindReusePort(addr)
				if reuse && err != nil {
					t.Errorf("bind %s with SO_REUSEPORT beside the member: %v", addr, err)
				}
				if !reuse && !errors.Is(err, syscall.EADDRINUSE) {
					t.Errorf("bind %s with SO_REUSEPORT beside a member without the flag: %v, want address in use", addr, err)
				}
			}
		})
	}
}

// peerURLOf is the host:port of the member's peer listener, from its
// "serving peer traffic" line.
func peerURLOf(t *testing.T, log string) string {
	t.Helper()
	for _, l := range parseEtcdLog(t, log) {
		if l.msg() == "serving peer traffic" {
			if a, ok := l.fields["address"].(string); ok {
				return a
			}
		}
	}
	t.Fatalf("no \"serving peer traffic\" line in:\n%s", log)
	return ""
}
