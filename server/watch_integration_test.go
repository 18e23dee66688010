package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberWatch is a prefix watch through one member only, recording every
// event as "key=value@rev"; clientv3 resumes it from its last revision + 1
// when the member goes away and comes back.
type memberWatch struct {
	name string
	mu   sync.Mutex
	evs  []string
	revs []int64
	errs []string
}

func (w *memberWatch) run(ch clientv3.WatchChan) {
	for resp := range ch {
		w.mu.Lock()
		if err := resp.Err(); err != nil {
			w.errs = append(w.errs, err.Error())
		}
		for _, e := range resp.Events {
			w.evs = append(w.evs, fmt.Sprintf("%s %s=%s@%d", e.Type, e.Kv.Key, e.Kv.Value, e.Kv.ModRevision))
			w.revs = append(w.revs, e.Kv.ModRevision)
		}
		w.mu.Unlock()
	}
}

func (w *memberWatch) snapshot() ([]string, []int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.evs...), append([]int64(nil), w.revs...)
}

// Watches through each of 3 members, while writes go on and the leader is
// SIGKILLed and restarted: every watcher — including the one through the
// killed member, resumed by the client from its last revision + 1 — ends
// with the same events, in revision order, none twice, and every
// acknowledged write among them at its revision.
func TestWatchesThroughEveryMemberLoseNothingAcrossLeaderKill(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := int64(0)
	{
		r, err := tc.client(tc.Endpoints()...).Get(ctx, "w/")
		if err != nil {
			t.Fatal(err)
		}
		start = r.Header.Revision + 1
	}
	var watches []*memberWatch
	for _, n := range tc.Nodes() {
		w := &memberWatch{name: n.Name()}
		watches = append(watches, w)
		cli := tc.client(n.ClientURL())
		go w.run(cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(start)))
	}

	// Writers through all members, each put retried until acknowledged
	// or the test's budget ends.
	type ack struct {
		ev  string
		rev int64
	}
	var acksMu sync.Mutex
	var acks []ack
	writer := tc.client(tc.Endpoints()...)
	const puts = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < puts && ctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("w/%d", i%17), fmt.Sprint(i)
			for ctx.Err() == nil {
				c, cancel := context.WithTimeout(ctx, 2*time.Second)
				r, err := writer.Put(c, k, v)
				cancel()
				if err == nil {
					acksMu.Lock()
					acks = append(acks, ack{fmt.Sprintf("PUT %s=%s@%d", k, v, r.Header.Revision), r.Header.Revision})
					acksMu.Unlock()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	old := tc.leader()
	if err := old.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := old.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", old.Name(), err)
	}
	wg.Wait()
	acksMu.Lock()
	last := acks[len(acks)-1].rev
	acksMu.Unlock()

	eventually(t, 30*time.Second, "every watcher reaches the last acknowledged write", func() error {
		for _, w := range watches {
			_, revs := w.snapshot()
			if len(revs) == 0 || revs[len(revs)-1] < last {
				return fmt.Errorf("watch through %s has %d events, last at %v; last write at %d", w.name, len(revs), revs[max(0, len(revs)-1):], last)
			}
		}
		return nil
	})
	ref, _ := watches[0].snapshot()
	for _, w := range watches {
		evs, revs := w.snapshot()
		for i := 1; i < len(revs); i++ {
			if revs[i] <= revs[i-1] {
				t.Fatalf("watch through %s: event %d at revision %d after %d (out of order or twice)", w.name, i, revs[i], revs[i-1])
			}
		}
		if strings.Join(evs, "\n") != strings.Join(ref, "\n") {
			t.Errorf("watch through %s differs from watch through %s:\n%s\nvs\n%s", w.name, watches[0].name, strings.Join(evs, "\n"), strings.Join(ref, "\n"))
		}
	}
	seen := map[string]bool{}
	for _, e := range ref {
		seen[e] = true
	}
	for _, a := range acks {
		if !seen[a.ev] {
			t.Errorf("acknowledged %s is in no watch", a.ev)
		}
	}
	t.Logf("%d acknowledged puts, %d events per watcher; leader %s killed and restarted", len(acks), len(ref), old.Name())
}

// A key whose lease expires gives every member's watcher one DELETE event,
// at the same revision, with the key's last value as prev_kv.
func TestWatchSeesLeaseExpiryAsDeleteOnEveryMember(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	g, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.Put(ctx, "exp", "v", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 3)
	for _, n := range tc.Nodes() {
		c := tc.client(n.ClientURL())
		ch := c.Watch(ctx, "exp", clientv3.WithRev(p.Header.Revision+1), clientv3.WithPrevKV())
		go func() {
			for resp := range ch {
				for _, e := range resp.Events {
					prev := "none"
					if e.PrevKv != nil {
						prev = fmt.Sprintf("%s=%s", e.PrevKv.Key, e.PrevKv.Value)
					}
					got <- fmt.Sprintf("%s %s@%d prev %s", e.Type, e.Kv.Key, e.Kv.ModRevision, prev)
					return
				}
			}
		}()
	}
	want := fmt.Sprintf("DELETE exp@%d prev exp=v", p.Header.Revision+1)
	for range tc.Nodes() {
		select {
		case e := <-got:
			if e != want {
				t.Errorf("event %q, want %q", e, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no DELETE event within 15 s of a 2 s lease")
		}
	}
}

// A watch through a follower that is paused (SIGSTOP) while the leader
// snapshots and compacts its log past it: on resume the follower installs
// the leader's snapshot with the watch open, and the watch delivers every
// write it missed, in order, once — caught up from the restored store.
func TestWatchThroughFollowerSurvivesSnapshotInstall(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=100", "--snapshot-catchup-entries=20")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lagging := tc.Nodes()[2]
	if l := tc.leader(); l.Name() == lagging.Name() {
		lagging = tc.Nodes()[1]
	}
	var others []string
	for _, n := range tc.Nodes() {
		if n.Name() != lagging.Name() {
			others = append(others, n.ClientURL())
		}
	}
	cli := tc.client(others...)
	r, err := cli.Put(ctx, "s/first", "0")
	if err != nil {
		t.Fatal(err)
	}
	w := &memberWatch{name: lagging.Name()}
	go w.run(tc.client(lagging.ClientURL()).Watch(ctx, "s/", clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision)))
	eventually(t, 10*time.Second, "watch through the follower sees the first put", func() error {
		if evs, _ := w.snapshot(); len(evs) == 0 {
			return fmt.Errorf("no event yet")
		}
		return nil
	})
	leader := tc.leader()
	snapshots := func() int { return strings.Count(tc.logOf(leader.Name()), `"msg":"saved snapshot"`) }
	if err := lagging.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	before := snapshots()
	want := []string{fmt.Sprintf("PUT s/first=0@%d", r.Header.Revision)}
	// More puts than the leader keeps in flight to the paused member
	// (MaxInflightMsgs 512: the stopped process's socket still takes
	// appends), and two leader snapshots after the pause, which compact
	// its log past the member (--snapshot-count=100,
	// --snapshot-catchup-entries=20); a loaded machine can delay them (the
	// snapshotter's duty cycle), so write until they are there, at most
	// 3,000 puts.
	for i := 0; i < 800 || (snapshots() < before+2 && i < 3000); i++ {
		p, err := cli.Put(ctx, fmt.Sprintf("s/%03d", i%50), fmt.Sprint(i))
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		want = append(want, fmt.Sprintf("PUT s/%03d=%d@%d", i%50, i, p.Header.Revision))
	}
	if err := lagging.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "watch through the follower catches up", func() error {
		if evs, _ := w.snapshot(); len(evs) < len(want) {
			return fmt.Errorf("%d of %d events", len(evs), len(want))
		}
		return nil
	})
	if !strings.Contains(tc.logOf(lagging.Name()), "restored the keyspace from a snapshot") {
		t.Fatalf("%s caught up without installing a snapshot", lagging.Name())
	}
	got, _ := w.snapshot()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("watch through %s after the snapshot:\n%s\nwant\n%s", lagging.Name(), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A catch-up response beyond --max-request-bytes (plus etcd's gRPC
// overhead) goes out in fragments to a watcher that asked for them, and in
// one piece to one that did not; both get every event.
func TestWatchFragmentsLargeResponses(t *testing.T) {
	tc := startCluster(t, 1, "--max-request-bytes=1024")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	val := strings.Repeat("v", 800)
	const puts = 1000
	var first int64
	for i := 0; i < puts; i++ {
		r, err := cli.Put(ctx, fmt.Sprintf("f/%04d", i), val)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if i == 0 {
			first = r.Header.Revision
		}
	}
	for _, fragment := range []bool{true, false} {
		wc := pb.NewWatchClient(cli.ActiveConnection())
		stream, err := wc.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte("f/"), RangeEnd: []byte("f0"), StartRevision: first, Fragment: fragment}}}); err != nil {
			t.Fatal(err)
		}
		events, fragments, largest := 0, 0, 0
		for events < puts {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("fragment=%v: after %d events: %v", fragment, events, err)
			}
			events += len(resp.Events)
			largest = max(largest, resp.Size())
			if resp.Fragment {
				fragments++
			}
		}
		stream.CloseSend()
		limit := 1024 + 512*1024
		switch {
		case fragment && (fragments == 0 || largest > limit+2*len(val)):
			t.Errorf("with fragment: %d fragments, largest response %d bytes; want fragments of about %d bytes", fragments, largest, limit)
		case !fragment && (fragments != 0 || largest <= limit):
			t.Errorf("without fragment: %d fragments, largest response %d bytes; want one response above %d", fragments, largest, limit)
		}
		t.Logf("fragment=%v: %d events, %d fragments, largest response %d bytes", fragment, events, fragments, largest)
	}
}

// --watch-progress-notify-interval: a watcher with progress_notify and no
// events gets progress notifications at the member's revision.
func TestWatchProgressNotifyInterval(t *testing.T) {
	tc := startCluster(t, 1, "--watch-progress-notify-interval=200ms")
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	r, err := cli.Put(ctx, "other", "x")
	if err != nil {
		t.Fatal(err)
	}
	ch := cli.Watch(ctx, "quiet", clientv3.WithProgressNotify())
	start := time.Now()
	notes := 0
	for resp := range ch {
		if !resp.IsProgressNotify() {
			continue
		}
		if resp.Header.Revision != r.Header.Revision {
			t.Fatalf("progress at %d, want the member's revision %d", resp.Header.Revision, r.Header.Revision)
		}
		if notes++; notes == 3 {
			break
		}
	}
	if notes < 3 {
		t.Fatalf("%d progress notifications before the deadline", notes)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("3 notifications took %v at a 200 ms interval", took)
	}
}

// A member stopped (SIGTERM) with a watch open through it ends the watch
// stream at once ("server stopped", which clients retry elsewhere) instead
// of holding its graceful stop for its 2 s limit.
func TestMemberWithOpenWatchesStopsPromptly(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	victim := tc.Nodes()[2]
	if l := tc.leader(); l.Name() == victim.Name() {
		victim = tc.Nodes()[1]
	}
	w := &memberWatch{name: victim.Name()}
	go w.run(tc.client(victim.ClientURL()).Watch(ctx, "p/", clientv3.WithPrefix()))
	cli := tc.client(tc.Endpoints()...)
	eventually(t, 10*time.Second, "watch through the victim sees a put", func() error {
		if _, err := cli.Put(ctx, "p/x", "x"); err != nil {
			return err
		}
		if evs, _ := w.snapshot(); len(evs) == 0 {
			return fmt.Errorf("no event yet")
		}
		return nil
	})
	start := time.Now()
	if err := victim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("stopping %s with an open watch took %v", victim.Name(), took)
	}
}

// A watch with prev_kv from a past revision is caught up at once; even
// that first response carries the previous values (the option must be
// known before the watcher can be served).
func TestWatchFromThePastWithPrevKVHasPrevKVFromTheFirstResponse(t *testing.T) {
	tc := startCluster(t, 1)
	tc.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := tc.client(tc.Endpoints()...)
	p, err := cli.Put(ctx, "pk", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "pk", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "pk"); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		wctx, wcancel := context.WithCancel(ctx)
		ch := cli.Watch(wctx, "pk", clientv3.WithRev(p.Header.Revision+1), clientv3.WithPrevKV())
		resp := <-ch
		wcancel()
		if len(resp.Events) != 2 {
			t.Fatalf("watch %d: %d events, want the second put and the delete (%v)", i, len(resp.Events), resp.Err())
		}
		for _, e := range resp.Events {
			if e.PrevKv == nil {
				t.Fatalf("watch %d: %s at %d without prev_kv", i, e.Type, e.Kv.ModRevision)
			}
		}
	}
}
