package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// discoveryMemberArgs is member name's command line on 127.0.0.1 ports
// base+i*10 (client) and +1 (peer), bootstrapping by v3 discovery through
// the discovery service at discoveryEP with token.
func discoveryMemberArgs(dir, name string, i, base int, discoveryEP, token string) []string {
	u := func(off int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+i*10+off) }
	return []string{
		"--name=" + name,
		"--data-dir=" + filepath.Join(dir, name),
		"--listen-client-urls=" + u(0), "--advertise-client-urls=" + u(0),
		"--listen-peer-urls=" + u(1), "--initial-advertise-peer-urls=" + u(1),
		"--discovery-endpoints=" + discoveryEP,
		"--discovery-token=" + token,
		"--heartbeat-interval=50", "--election-timeout=500",
	}
}

// discovered is what a bootstrapped cluster says of itself.
type discovered struct {
	clusterID uint64
	members   []string // id name peerURLs clientURLs, sorted
}

func memberList(t *testing.T, ep string) discovered {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("member list from %s: %v", ep, err)
	}
	d := discovered{clusterID: resp.Header.ClusterId}
	for _, m := range resp.Members {
		d.members = append(d.members, fmt.Sprintf("%x %s %v %v", m.ID, m.Name, m.PeerURLs, m.ClientURLs))
	}
	slices.Sort(d.members)
	return d
}

// setDiscoverySize empties the discovery service's registry and sets the
// token's cluster size, as an operator does before bootstrapping
// (etcd's op-guide/clustering.md, "etcd discovery").
func setDiscoverySize(t *testing.T, ep, token string, size int) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err = cli.Delete(ctx, "/_etcd/registry/", clientv3.WithPrefix())
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // the service is electing itself
	}
	if err == nil {
		_, err = cli.Put(ctx, "/_etcd/registry/"+token+"/_config/size", fmt.Sprint(size))
	}
	if err != nil {
		t.Fatalf("set the discovery size on %s: %v", ep, err)
	}
}

// runToExit runs bin with args until it exits (at most a minute) and
// returns its exit code and output.
func runToExit(t *testing.T, bin string, args []string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not exit within a minute:\n%s", bin, args, out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

// Three members with --discovery-endpoints and --discovery-token find each
// other through a discovery service (here a one-member quorumd: any etcd
// serves as one) and form the cluster etcd's members form with the same
// command lines: the same member IDs, names, URLs and cluster ID. A fourth
// member with the full token's command line is refused by both with
// etcd's lines and exit code 1, and a data dir that holds a member
// restarts without asking the service.
func TestV3DiscoveryBootstrapsTheClusterEtcdBootstraps(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	const token = "discovery-test-token"
	svcDir, svcBase := t.TempDir(), freeBase(t)
	svcEP := fmt.Sprintf("127.0.0.1:%d", svcBase+10)
	startMembers(t, quorumdBinary, svcDir, [][]string{{
		"--name=svc", "--data-dir=" + filepath.Join(svcDir, "svc"),
		fmt.Sprintf("--listen-client-urls=http://%s", svcEP), fmt.Sprintf("--advertise-client-urls=http://%s", svcEP),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", svcBase+11),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", svcBase+11),
		fmt.Sprintf("--initial-cluster=svc=http://127.0.0.1:%d", svcBase+11),
	}})
	base := freeBase(t)
	got := map[string]discovered{}
	full := map[string]int{}
	fullOut := map[string]string{}
	for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
		t.Run(srv.name, func(t *testing.T) {
			setDiscoverySize(t, svcEP, token, 3)
			dir := t.TempDir()
			var argv [][]string
			var eps []string
			for i := 1; i <= 3; i++ {
				argv = append(argv, discoveryMemberArgs(dir, fmt.Sprintf("d%d", i), i, base, svcEP, token))
				eps = append(eps, fmt.Sprintf("127.0.0.1:%d", base+i*10))
			}
			startMembers(t, srv.bin, dir, argv)
			putGet(t, eps, nil)
			got[srv.name] = memberList(t, eps[1])
			// The token's cluster is full: a fourth member is refused.
			// freeBase checks the ports of three members only: the fourth
			// gets member 1's ports of a range of its own.
			full[srv.name], fullOut[srv.name] = runToExit(t, srv.bin, discoveryMemberArgs(dir, "d4", 1, freeBase(t), svcEP, token))
		})
	}
	if t.Failed() {
		return
	}
	if e, q := got["etcd"], got["quorumd"]; e.clusterID != q.clusterID || !slices.Equal(e.members, q.members) {
		t.Errorf("cluster by discovery:\n etcd    %x %q\n quorumd %x %q", e.clusterID, e.members, q.clusterID, q.members)
	}
	if len(got["quorumd"].members) != 3 {
		t.Errorf("quorumd's members: %q", got["quorumd"].members)
	}
	for name, out := range fullOut {
		if full[name] != 1 || !strings.Contains(out, "failed to bootstrap; discovery token was already used") ||
			!strings.Contains(out, "discovery: cluster is full") {
			t.Errorf("%s's fourth member: exit %d, want 1 with the full cluster's lines:\n%s", name, full[name], tail(out, 3000))
		}
	}
}

// A member whose data dir holds a member restarts from it, warns as etcd
// that the discovery token is ignored, and never asks the service (here
// there is none listening).
func TestV3DiscoveryIsIgnoredOnRestart(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	dir, base := t.TempDir(), freeBase(t)
	u := func(off int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+10+off) }
	static := []string{"--name=r1", "--data-dir=" + filepath.Join(dir, "r1"),
		"--listen-client-urls=" + u(0), "--advertise-client-urls=" + u(0),
		"--listen-peer-urls=" + u(1), "--initial-advertise-peer-urls=" + u(1)}
	t.Run("bootstrap", func(t *testing.T) {
		startMembers(t, quorumdBinary, dir, [][]string{append(slices.Clone(static), "--initial-cluster=r1="+u(1))})
		putGet(t, []string{u(0)[len("http://"):]}, nil)
	})
	if t.Failed() {
		return
	}
	// Port base+30 is free (freeBase checked it) and nothing listens there.
	args := append(slices.Clone(static), fmt.Sprintf("--discovery-endpoints=127.0.0.1:%d", base+30), "--discovery-token=t")
	startMembers(t, quorumdBinary, dir, [][]string{args})
	putGet(t, []string{u(0)[len("http://"):]}, nil)
	b, err := os.ReadFile(filepath.Join(dir, "member1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := withMsg(logLines(t, string(b)), "discovery token is ignored since cluster already initialized; valid logs are found"); len(lines) != 1 {
		t.Errorf("restart with discovery flags logged %d ignore lines, want 1:\n%s", len(lines), b)
	}
}

// v2Discovery is the part of etcd's v2 keys API that v2 discovery uses
// (what discovery.etcd.io serves at https://discovery.etcd.io/<token>):
// GET of a key or of a directory's children, PUT with prevExist=false, and
// GET with wait=true&waitIndex=N (recursive or not), answered from the
// history of every change, each with its index in X-Etcd-Index. Keys are
// the URL paths; directories exist only as prefixes.
type v2Discovery struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every write
	index   uint64
	nodes   map[string]*v2Node
	history []*v2Node // creations, in index order
}

type v2Node struct {
	Key           string    `json:"key"`
	Value         string    `json:"value,omitempty"`
	Dir           bool      `json:"dir,omitempty"`
	Nodes         []*v2Node `json:"nodes,omitempty"`
	CreatedIndex  uint64    `json:"createdIndex,omitempty"`
	ModifiedIndex uint64    `json:"modifiedIndex,omitempty"`
}

func newV2Discovery() *v2Discovery {
	return &v2Discovery{changed: make(chan struct{}), nodes: map[string]*v2Node{}}
}

// create adds key=value unless key exists.
func (d *v2Discovery) create(key, value string) (*v2Node, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodes[key]; ok {
		return nil, false
	}
	d.index++
	n := &v2Node{Key: key, Value: value, CreatedIndex: d.index, ModifiedIndex: d.index}
	d.nodes[key] = n
	d.history = append(d.history, n)
	close(d.changed)
	d.changed = make(chan struct{})
	return n, true
}

func (d *v2Discovery) reply(w http.ResponseWriter, code int, body any) {
	d.mu.Lock()
	w.Header().Set("X-Etcd-Index", fmt.Sprint(d.index))
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

func (d *v2Discovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSuffix(r.URL.Path, "/")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && q.Get("prevExist") == "false":
		r.ParseForm()
		if n, ok := d.create(key, r.PostForm.Get("value")); ok {
			d.reply(w, http.StatusCreated, map[string]any{"action": "create", "node": n})
			return
		}
		d.reply(w, http.StatusPreconditionFailed, map[string]any{"errorCode": 105, "message": "Key already exists", "cause": key})
	case r.Method == http.MethodGet && q.Get("wait") == "true":
		after, _ := strconv.ParseUint(q.Get("waitIndex"), 10, 64)
		recursive := q.Get("recursive") == "true"
		for {
			d.mu.Lock()
			var hit *v2Node
			for _, n := range d.history {
				if n.ModifiedIndex >= after && (n.Key == key || recursive && strings.HasPrefix(n.Key, key+"/")) {
					hit = n
					break
				}
			}
			changed := d.changed
			d.mu.Unlock()
			if hit != nil {
				d.reply(w, http.StatusOK, map[string]any{"action": "create", "node": hit})
				return
			}
			select {
			case <-changed:
			case <-r.Context().Done():
				return
			}
		}
	case r.Method == http.MethodGet:
		d.mu.Lock()
		n, ok := d.nodes[key]
		dir := &v2Node{Key: key, Dir: true}
		subdirs := map[string]bool{}
		for k, c := range d.nodes {
			rest, found := strings.CutPrefix(k, key+"/")
			if !found {
				continue
			}
			if sub, _, nested := strings.Cut(rest, "/"); !nested {
				dir.Nodes = append(dir.Nodes, c)
			} else if !subdirs[sub] {
				subdirs[sub] = true
				dir.Nodes = append(dir.Nodes, &v2Node{Key: key + "/" + sub, Dir: true})
			}
		}
		d.mu.Unlock()
		switch {
		case ok:
			d.reply(w, http.StatusOK, map[string]any{"action": "get", "node": n})
		case len(dir.Nodes) > 0:
			d.reply(w, http.StatusOK, map[string]any{"action": "get", "node": dir})
		default:
			d.reply(w, http.StatusNotFound, map[string]any{"errorCode": 100, "message": "Key not found", "cause": key})
		}
	default:
		http.Error(w, "not part of v2 discovery", http.StatusMethodNotAllowed)
	}
}

// --discovery (v2 discovery, through a service speaking the v2 keys API as
// discovery.etcd.io does) bootstraps the cluster etcd's members bootstrap
// with the same command lines, and refuses a fourth member as etcd does.
func TestV2DiscoveryBootstrapsTheClusterEtcdBootstraps(t *testing.T) {
	if quorumdBinary == "" {
		t.Skip("integration test: starts real quorumd processes (skipped with -short)")
	}
	etcd := needEtcd(t)
	base := freeBase(t)
	got := map[string]discovered{}
	// One address for both runs (the URL is the cluster token, and so is
	// in every member ID), a fresh registry for each.
	var svc atomic.Pointer[v2Discovery]
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { svc.Load().ServeHTTP(w, r) }))
	defer hs.Close()
	durl := hs.URL + "/v2token"
	for _, srv := range []struct{ name, bin string }{{"etcd", etcd}, {"quorumd", quorumdBinary}} {
		t.Run(srv.name, func(t *testing.T) {
			svc.Store(newV2Discovery())
			svc.Load().create("/v2token/_config/size", "3")
			dir := t.TempDir()
			args := func(name string, i, base int) []string {
				a := discoveryMemberArgs(dir, name, i, base, "", "")
				return append(a[:len(a)-4], "--discovery="+durl, a[len(a)-2], a[len(a)-1])
			}
			var argv [][]string
			var eps []string
			for i := 1; i <= 3; i++ {
				argv = append(argv, args(fmt.Sprintf("d%d", i), i, base))
				eps = append(eps, fmt.Sprintf("127.0.0.1:%d", base+i*10))
			}
			startMembers(t, srv.bin, dir, argv)
			putGet(t, eps, nil)
			got[srv.name] = memberList(t, eps[2])
			code, out := runToExit(t, srv.bin, args("d4", 1, freeBase(t))) // ports of its own, as above
			if code != 1 || !strings.Contains(out, "V2 discovery is deprecated!") ||
				!strings.Contains(out, "failed to bootstrap; discovery token was already used") ||
				!strings.Contains(out, `"discovery-token":"`+durl+`"`) || !strings.Contains(out, "discovery: cluster is full") {
				t.Errorf("fourth member: exit %d, want 1 with etcd's lines:\n%s", code, tail(out, 3000))
			}
		})
	}
	if e, q := got["etcd"], got["quorumd"]; e.clusterID == 0 || e.clusterID != q.clusterID || !slices.Equal(e.members, q.members) {
		t.Errorf("cluster by v2 discovery:\n etcd    %x %q\n quorumd %x %q", e.clusterID, e.members, q.clusterID, q.members)
	}
}
