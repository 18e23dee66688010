package server_test

// etcd's grpc-gateway: JSON over HTTP at /v3/... on the client URLs, as
// etcd's documentation (dev-guide/api_grpc_gateway.md) uses it with curl.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// gatewayHeaderIDs are the response header's fields that differ between
// two clusters for the same requests.
var gatewayHeaderIDs = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":"[0-9]+"`)

// compactJSON is b without insignificant space if it is JSON (protojson
// varies its spacing from one binary to the next on purpose, so that no
// one relies on it), else b.
func compactJSON(b []byte) string {
	// protobuf-go's error texts vary too: "proto:" is followed by a space
	// or a no-break space, per binary.
	b = bytes.ReplaceAll(b, []byte("\u00a0"), []byte(" "))
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return strings.TrimSpace(string(b))
	}
	return buf.String()
}

// gatewayMembers is a member list (one etcd, three quorumd members).
var gatewayMembers = regexp.MustCompile(`"members":\[.*\]`)

// gatewayScript sends etcd's documented gateway requests to eps (in turn)
// and returns status, the CORS origin and the body of each answer, with
// the header's cluster, member and term and the member list blanked.
func gatewayScript(t *testing.T, eps []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second}
	var out []string
	n := 0
	call := func(method, path, body string, hdr ...string) string {
		ep := eps[n%len(eps)]
		n++
		req, err := http.NewRequestWithContext(ctx, method, ep+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got := gatewayHeaderIDs.ReplaceAllString(compactJSON(b), `"$1":"-"`)
		got = gatewayMembers.ReplaceAllString(got, `"members":[-]`)
		out = append(out, fmt.Sprintf("%s %s %s -> %d cors=%q %s", method, path, body, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), got))
		return string(b)
	}
	// base64: foo Zm9v, bar YmFy, baz YmF6, fop Zm9w
	call("POST", "/v3/kv/put", `{"key": "Zm9v", "value": "YmFy"}`)
	call("POST", "/v3/kv/range", `{"key": "Zm9v"}`)
	call("POST", "/v3beta/kv/range", `{"key": "Zm9v"}`)
	call("POST", "/v3/kv/put", `{"key": "Zm9v", "value": "YmF6", "prev_kv": true}`)
	call("POST", "/v3/kv/range", `{"key": "Zm9v", "range_end": "Zm9w", "count_only": true}`)
	call("POST", "/v3/kv/txn", `{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}`)
	call("POST", "/v3/lease/grant", `{"TTL": 60, "ID": 4660}`)
	call("POST", "/v3/lease/timetolive", `{"ID": 4660}`)
	call("POST", "/v3/kv/put", `{"key": "Zm9v", "value": "YmFy", "lease": 9999}`)
	call("POST", "/v3/kv/put", `{"key": 42}`)
	call("POST", "/v3/kv/nothing", `{}`)
	call("OPTIONS", "/v3/kv/range", ``, "Origin", "http://example.com")
	call("POST", "/v3/kv/deleterange", `{"key": "Zm9v"}`)
	call("POST", "/v3/maintenance/alarm", `{"action": "GET"}`)
	call("POST", "/v3/cluster/member/list", `{"linearizable": true}`)

	// A watch streams its answers, one JSON object per line.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	req, _ := http.NewRequestWithContext(wctx, "POST", eps[0]+"/v3/watch", strings.NewReader(`{"create_request": {"key": "d2F0Y2g=", "start_revision": 1}}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() {
		if !lines.Scan() {
			t.Fatalf("watch stream ended: %v", lines.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("watch line %q: %v", lines.Text(), err)
		}
		got := gatewayHeaderIDs.ReplaceAllString(compactJSON(lines.Bytes()), `"$1":"-"`)
		got = regexp.MustCompile(`"watch_id":"[0-9]+"`).ReplaceAllString(got, `"watch_id":"-"`)
		out = append(out, "watch: "+got)
	}
	next() // created
	call("POST", "/v3/kv/put", `{"key": "d2F0Y2g=", "value": "MQ=="}`)
	next() // the put's event

	// The same stream over a websocket (etcd's wsproxy): the request is
	// the first message.
	wsURL := "ws" + strings.TrimPrefix(eps[1%len(eps)], "http") + "/v3/watch"
	ws, _, err := websocket.DefaultDialer.DialContext(wctx, wsURL, nil)
	if err != nil {
		t.Fatalf("websocket %s: %v", wsURL, err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"create_request": {"key": "d2F0Y2g=", "start_revision": 1}}`)); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 2 { // created, then the event of the put above
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("websocket watch: %v", err)
		}
		got := gatewayHeaderIDs.ReplaceAllString(compactJSON(msg), `"$1":"-"`)
		out = append(out, "websocket watch: "+regexp.MustCompile(`"watch_id":"[0-9]+"`).ReplaceAllString(got, `"watch_id":"-"`))
	}

	// Auth: enabled through the gateway; then a call without a token is
	// refused and one with the token from authenticate is served.
	call("POST", "/v3/auth/role/add", `{"name": "root"}`)
	call("POST", "/v3/auth/user/add", `{"name": "root", "password": "pw"}`)
	call("POST", "/v3/auth/user/grant", `{"user": "root", "role": "root"}`)
	call("POST", "/v3/auth/enable", `{}`)
	call("POST", "/v3/kv/range", `{"key": "Zm9v"}`)
	var auth struct{ Token string }
	if err := json.Unmarshal([]byte(call("POST", "/v3/auth/authenticate", `{"name": "root", "password": "pw"}`)), &auth); err != nil || auth.Token == "" {
		t.Fatalf("authenticate: %v %q", err, auth.Token)
	}
	out[len(out)-1] = regexp.MustCompile(`"token":"[^"]*"`).ReplaceAllString(out[len(out)-1], `"token":"-"`)
	call("POST", "/v3/kv/range", `{"key": "d2F0Y2g="}`, "Authorization", auth.Token)
	return out
}

func TestGRPCGatewayAnswersAsEtcd(t *testing.T) {
	sameAsEtcd(t, "grpc-gateway", func(t *testing.T, eps []string) []string {
		for i := range eps {
			if !strings.HasPrefix(eps[i], "http") {
				eps[i] = "http://" + eps[i]
			}
		}
		return gatewayScript(t, eps)
	})
}
