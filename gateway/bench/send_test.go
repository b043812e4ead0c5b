package bench_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

// transactionSizes are the PDU counts of the /send benchmark. 50 is the
// largest transaction the Matrix specification allows.
var transactionSizes = []int{1, 10, 50}

// sendRequest is one prepared /send: its URI, body and X-Matrix
// Authorization header, and the events it carries.
type sendRequest struct {
	uri    string
	body   []byte
	auth   string
	events []benchEvent
}

// newSendRequest builds a /send of pdus typical (1 KiB) message events,
// signed by the remote server for the gateway's server name.
func newSendRequest(tb testing.TB, pdus int) sendRequest {
	tb.Helper()
	req := sendRequest{uri: fmt.Sprintf("/_matrix/federation/v1/send/bench%d", pdus)}
	var body strings.Builder
	fmt.Fprintf(&body, `{"origin":%q,"origin_server_ts":1700000000000,"pdus":[`, remoteName)
	for i := range pdus {
		ev := signMessage(tb, 1<<10, i+1)
		req.events = append(req.events, ev)
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(ev.data)
	}
	body.WriteString("]}")
	req.body = []byte(body.String())

	content, err := canonicaljson.Parse(req.body)
	if err != nil {
		tb.Fatalf("parse transaction: %v", err)
	}
	creds := xmatrix.Sign(remoteKey, remoteKeyID, http.MethodPut, req.uri, remoteName, localName, &content)
	if req.auth, err = xmatrix.FormatAuthorization(creds); err != nil {
		tb.Fatalf("format X-Matrix header: %v", err)
	}
	return req
}

// send makes the request to baseURL and fails unless the response is 200.
func (r sendRequest) send(client *http.Client, baseURL string) error {
	httpReq, err := http.NewRequest(http.MethodPut, baseURL, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	httpReq.URL.Opaque = r.uri
	httpReq.Header.Set("Authorization", r.auth)
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(httpReq)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", baseURL, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: status %d: %s", baseURL, resp.StatusCode, answer)
	}
	return nil
}

// cryptoTime returns the fastest of several timings of ed25519.Verify over
// the signed bytes of every event of r, one after the other.
func (r sendRequest) cryptoTime(tb testing.TB) time.Duration {
	tb.Helper()
	pub := remotePublic()
	best := time.Duration(1 << 62)
	for range 20 {
		start := time.Now()
		for _, ev := range r.events {
			if !ed25519.Verify(pub, ev.signedBytes, ev.signature) {
				tb.Fatal("signature of a transaction event does not verify")
			}
		}
		best = min(best, time.Since(start))
	}
	return best
}

// processCPU returns the user and system CPU time of the whole process.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// sendSamples are the latency and CPU time of each request to one target.
type sendSamples struct {
	latency []time.Duration
	cpu     time.Duration
}

func (s *sendSamples) measure(r sendRequest, client *http.Client, baseURL string) error {
	cpu, start := processCPU(), time.Now()
	err := r.send(client, baseURL)
	s.latency = append(s.latency, time.Since(start))
	s.cpu += processCPU() - cpu
	return err
}

// BenchmarkSend measures a /send of 1, 10 and 50 typical message events
// through the running gateway (verification, one decision per request and
// per PDU, decision records, forwarding) and through a plain
// httputil.ReverseProxy, both over TLS to the same homeserver stand-in.
// One operation is one request to each, alternating which goes first.
//
// The metrics are latency percentiles of each target in µs, the added
// latency (gateway minus proxy, per percentile), and the fastest time of
// the transaction's ed25519.Verify calls. PDU/s/core is PDUs per second of
// process CPU time while requests to that target were in flight. That CPU
// time includes the in-process client and stand-in on both sides.
func BenchmarkSend(b *testing.B) {
	fx := sharedFixture(b)
	type target struct {
		pdus int
		sync string
		url  string
	}
	var targets []target
	for _, pdus := range transactionSizes {
		targets = append(targets, target{pdus, "always", fx.gatewayURL})
	}
	// The same 50-PDU transaction with records handed to the kernel
	// without fsync shows how much of the added latency waits for the disk.
	targets = append(targets, target{50, "none", fx.noSyncURL})
	for _, tg := range targets {
		req := newSendRequest(b, tg.pdus)
		crypto := req.cryptoTime(b)
		b.Run(fmt.Sprintf("pdus=%d/sync=%s", tg.pdus, tg.sync), func(b *testing.B) {
			var gw, proxy sendSamples
			forwarded := fx.hs.requests.Load()
			b.SetBytes(int64(len(req.body)))
			i := 0
			for b.Loop() {
				first, second := func() error { return gw.measure(req, fx.gatewayHTTP, tg.url) },
					func() error { return proxy.measure(req, fx.proxyHTTP, fx.proxyURL) }
				if i%2 == 1 {
					first, second = second, first
				}
				i++
				if err := first(); err != nil {
					b.Fatal(err)
				}
				if err := second(); err != nil {
					b.Fatal(err)
				}
			}
			if got, want := fx.hs.requests.Load()-forwarded, int64(2*i); got != want {
				b.Fatalf("homeserver stand-in received %d requests, want %d: the gateway withheld a transaction", got, want)
			}
			reportSend(b, tg.pdus, &gw, &proxy, crypto)
		})
	}
}

func reportSend(b *testing.B, pdus int, gw, proxy *sendSamples, crypto time.Duration) {
	gw50, gw99 := percentile(gw.latency, 50), percentile(gw.latency, 99)
	proxy50, proxy99 := percentile(proxy.latency, 50), percentile(proxy.latency, 99)
	b.ReportMetric(micros(gw50), "gw-p50-µs")
	b.ReportMetric(micros(gw99), "gw-p99-µs")
	b.ReportMetric(micros(proxy50), "proxy-p50-µs")
	b.ReportMetric(micros(proxy99), "proxy-p99-µs")
	b.ReportMetric(micros(gw50-proxy50), "added-p50-µs")
	b.ReportMetric(micros(gw99-proxy99), "added-p99-µs")
	b.ReportMetric(micros(crypto), "crypto-µs")
	b.ReportMetric(float64(gw99-proxy99)/float64(crypto), "added-p99/crypto")
	n := float64(len(gw.latency))
	if gw.cpu > 0 {
		b.ReportMetric(n*float64(pdus)/gw.cpu.Seconds(), "gw-PDU/s/core")
	}
	if proxy.cpu > 0 {
		b.ReportMetric(n*float64(pdus)/proxy.cpu.Seconds(), "proxy-PDU/s/core")
	}
}

// percentile returns the p-th percentile of samples by the nearest-rank
// method. It sorts samples.
func percentile(samples []time.Duration, p int) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	rank := (p*len(samples) + 99) / 100
	return samples[max(rank, 1)-1]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
