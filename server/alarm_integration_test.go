package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Alarms are replicated state: an ACTIVATE through one member is listed
// by every member, refuses writes on every member, and is still there
// after every member restarts from a snapshot taken after the alarm
// (--snapshot-count=20 and more than 20 entries after it: the WAL behind
// the snapshot no longer has the ACTIVATE); a DEACTIVATE through another
// member clears it everywhere.
func TestAlarmsAreReplicatedAndSurviveRestarts(t *testing.T) {
	tc := startCluster(t, 3, "--snapshot-count=20", "--snapshot-catchup-entries=5")
	tc.waitHealthy()
	eps := tc.Endpoints()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := tc.client(eps[0])
	st, err := cli.Status(ctx, eps[0])
	if err != nil {
		t.Fatal(err)
	}
	id := st.Header.MemberId
	mc := pb.NewMaintenanceClient(cli.ActiveConnection())
	resp, err := mc.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_NOSPACE})
	if err != nil || len(resp.Alarms) != 1 || resp.Alarms[0].MemberID != id || resp.Header.MemberId != id {
		t.Fatalf("activate: %v %v", resp, err)
	}
	want := fmt.Sprintf("memberID:%d alarm:NOSPACE", id)
	check := func(when string) {
		t.Helper()
		for _, ep := range eps {
			ls := alarmLines(t, mustCtl(t, []string{ep}, "alarm", "list"))
			if len(ls) != 1 || ls[0] != want {
				t.Fatalf("%s: alarm list on %s: %q, want %q", when, ep, ls, want)
			}
			if out, err := ctl(t, []string{ep}, "put", "k", "v"); err == nil || out == "" {
				t.Fatalf("%s: put on %s with NOSPACE active: %q", when, ep, out)
			}
		}
	}
	check("after activate")
	// Entries that pass the quota (deletes) so every member snapshots past
	// the ACTIVATE.
	for i := range 60 {
		if _, err := cli.Delete(ctx, fmt.Sprintf("none-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range tc.Nodes() {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range tc.Nodes() {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitHealthy()
	check("after restarting every member")

	c2 := tc.client(eps[1])
	mc2 := pb.NewMaintenanceClient(c2.ActiveConnection())
	eventually(t, 10*time.Second, "deactivate", func() error {
		resp, err := mc2.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: id, Alarm: pb.AlarmType_NOSPACE})
		if err != nil {
			return err
		}
		if len(resp.Alarms) != 1 {
			return fmt.Errorf("deactivate answered %v", resp.Alarms)
		}
		return nil
	})
	for _, ep := range eps {
		if ls := alarmLines(t, mustCtl(t, []string{ep}, "alarm", "list")); len(ls) != 0 {
			t.Fatalf("alarm list on %s after deactivate: %q", ep, ls)
		}
		if out := mustCtl(t, []string{ep}, "put", "k", "v"); out != "OK\n" {
			t.Fatalf("put on %s after deactivate: %q", ep, out)
		}
	}
	// ACTIVATE of NONE does nothing, as etcd's.
	resp, err = mc2.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: id, Alarm: pb.AlarmType_NONE})
	if err != nil || len(resp.Alarms) != 0 {
		t.Fatalf("activate NONE: %v %v", resp, err)
	}
}
