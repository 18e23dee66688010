package server_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get sends GET url with Host header host and returns the status and body.
func getWithHost(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// --host-whitelist as etcd's: a plaintext HTTP request naming another host
// gets 421 and etcd's explanation, word for word; a listed host (with or
// without a port) is served. Compared with a real etcd given the same
// flag when tools/bin/etcd is there.
func TestHostWhitelistAnswersAsEtcd(t *testing.T) {
	const flag = "--host-whitelist=allowed.example"
	p, curls := startQuorumd(t, 1, flag)
	eventually(t, 15*time.Second, "serving", func() error {
		if !strings.Contains(p.log(), "ready to serve client requests") {
			return errors.New("not yet")
		}
		return nil
	})
	etcd := startRealEtcdWith(t, flag)
	for _, host := range []string{"evil.example", "evil.example:2379", "allowed.example", "allowed.example:2379"} {
		code, body := getWithHost(t, curls[0]+"/health", host)
		allowed := strings.HasPrefix(host, "allowed.")
		if allowed && code != http.StatusOK {
			t.Errorf("Host %s: %d %q, want it served", host, code, body)
		}
		if !allowed && (code != http.StatusMisdirectedRequest || !strings.Contains(body, "CVE-2018-5702")) {
			t.Errorf("Host %s: %d %q, want 421 and etcd's explanation", host, code, body)
		}
		if etcd == "" {
			continue
		}
		ecode, ebody := getWithHost(t, etcd+"/health", host)
		if ecode != code || (!allowed && ebody != body) {
			t.Errorf("Host %s: quorumd %d %q, etcd %d %q", host, code, body, ecode, ebody)
		}
	}
	if !strings.Contains(p.log(), `"msg":"rejecting HTTP request to prevent DNS rebinding attacks","host":"evil.example"`) {
		t.Errorf("no etcd-style warning for the rejected host in the log")
	}
}
