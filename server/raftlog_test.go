package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/quorum-kv/quorum/internal/etcdlog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The raft library's lines come out as in etcd's log: the library's text,
// logger "raft", and the library's call site as the caller.
func TestRaftLoggerWritesEtcdsRaftLines(t *testing.T) {
	var buf bytes.Buffer
	storage := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 0xbdae9bbc11dd390d, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, PreVote: true, Logger: newRaftLogger(etcdlog.Default(&buf)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 0xbdae9bbc11dd390d}}); err != nil {
		t.Fatal(err)
	}
	advance := func() {
		for i := 0; i < 10 && rn.HasReady(); i++ {
			rd := rn.Ready()
			if err := storage.Append(rd.Entries); err != nil {
				t.Fatal(err)
			}
			for _, e := range rd.CommittedEntries {
				if e.Type == raftpb.EntryConfChange {
					var cc raftpb.ConfChange
					if err := cc.Unmarshal(e.Data); err != nil {
						t.Fatal(err)
					}
					rn.ApplyConfChange(cc)
				}
			}
			rn.Advance(rd)
		}
	}
	advance()
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	advance()
	byMsg := map[string]map[string]any{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %s", sc.Bytes())
		}
		byMsg[m["msg"].(string)] = m
	}
	const id = "bdae9bbc11dd390d"
	for _, msg := range []string{
		id + " became pre-candidate at term 1",
		id + " became candidate at term 2",
		id + " became leader at term 2",
	} {
		m, ok := byMsg[msg]
		if !ok {
			t.Errorf("no line %q in\n%s", msg, keys(byMsg))
			continue
		}
		if m["logger"] != "raft" || m["level"] != "info" {
			t.Errorf("%q: logger %v level %v, want raft info", msg, m["logger"], m["level"])
		}
		if c, _ := m["caller"].(string); !strings.HasPrefix(c, "v3@v3.6.0/raft.go:") {
			t.Errorf("%q: caller %q, want the raft library's raft.go", msg, c)
		}
	}
}

func keys(m map[string]map[string]any) string {
	var b strings.Builder
	for k := range m {
		fmt.Fprintln(&b, k)
	}
	return b.String()
}
