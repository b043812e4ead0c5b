package bench_test

import (
	"testing"
	"time"
)

// TestSendFixture checks that the gateway forwards the benchmark's
// transactions and that the plain proxy reaches the same stand-in, so that
// BenchmarkSend measures accepted traffic.
func TestSendFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	fx := sharedFixture(t)
	for _, pdus := range []int{1, 2} {
		req := newSendRequest(t, pdus)
		before := fx.hs.requests.Load()
		if err := req.send(fx.gatewayHTTP, fx.gatewayURL); err != nil {
			t.Errorf("gateway, %d PDUs: %v", pdus, err)
		}
		if err := req.send(fx.gatewayHTTP, fx.noSyncURL); err != nil {
			t.Errorf("gateway without fsync, %d PDUs: %v", pdus, err)
		}
		if err := req.send(fx.proxyHTTP, fx.proxyURL); err != nil {
			t.Errorf("plain proxy, %d PDUs: %v", pdus, err)
		}
		if got := fx.hs.requests.Load() - before; got != 3 {
			t.Errorf("%d PDUs: stand-in received %d requests, want 3", pdus, got)
		}
	}
}

// TestPercentile checks the nearest-rank percentile on ten samples.
func TestPercentile(t *testing.T) {
	samples := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	tests := []struct {
		p    int
		want time.Duration
	}{{50, 5}, {99, 10}, {1, 1}, {100, 10}}
	for _, tt := range tests {
		if got := percentile(samples, tt.p); got != tt.want {
			t.Errorf("percentile(%d) = %d, want %d", tt.p, got, tt.want)
		}
	}
}
