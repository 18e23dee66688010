package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Round trips between peers, measured as etcd's rafthttp measures them
// (probing_status.go): each member probes every peer with GET
// /raft/probing on its peer URLs, over a kept-alive connection, and
// etcd_network_peer_round_trip_time_seconds{To} records how long the
// answer took. etcd feeds the histogram a smoothed RTT every 30 s; quorumd
// records every probe (one per probeInterval) from the first one on.
const (
	probingPath = "/raft/probing"
	// probeInterval is etcd's proberInterval (ConnReadTimeout - 1s).
	probeInterval = 4 * time.Second
	probeTimeout  = 5 * time.Second
	// probeRetry is the wait after a failed probe (a peer still starting).
	probeRetry = time.Second
)

// probeHealth is the answer to a probe, as etcd's (github.com/xiang90/probing).
type probeHealth struct {
	OK  bool
	Now time.Time
}

func serveProbing(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(probeHealth{OK: true, Now: time.Now()})
}

// probeLoop probes the peer every probeInterval (probeRetry after a
// failure) until the peer stops, trying its URLs in turn; a failed probe
// records nothing (the stream's failures show in
// etcd_network_peer_sent_failures_total).
func (p *peer) probeLoop() {
	defer p.wg.Done()
	tr := peerHTTPClientTransport(p.t.tlsCfg)
	tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 1, 2*probeInterval
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: probeTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		next := probeRetry
		for _, u := range p.peerURLs() {
			if rtt, ok := probe(ctx, client, u+probingPath); ok {
				p.metrics.roundTrip.Observe(rtt.Seconds())
				next = probeInterval
				break
			}
		}
		timer.Reset(next)
	}
}

// probe makes one probe and returns its round-trip time.
func probe(ctx context.Context, client *http.Client, url string) (time.Duration, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // so the connection is reused
		resp.Body.Close()
	}()
	var h probeHealth
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&h) != nil || !h.OK {
		return 0, false
	}
	return time.Since(start), true
}
