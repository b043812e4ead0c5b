package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCounterServed(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	counter := m.Counter("bordergate_test_events", "Events counted by the test.")
	counter.Add(context.Background(), 3)

	body := scrape(t, m)
	if !strings.Contains(body, "bordergate_test_events_total 3") {
		t.Errorf("metrics output lacks bordergate_test_events_total 3:\n%s", body)
	}
	if !strings.Contains(body, "# HELP bordergate_test_events_total Events counted by the test.") {
		t.Errorf("metrics output lacks the counter's help line:\n%s", body)
	}
}

func TestMetricsSeparate(t *testing.T) {
	first, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	second, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	first.Counter("bordergate_test_events", "Events.").Add(context.Background(), 1)

	if body := scrape(t, second); strings.Contains(body, "bordergate_test_events_total") {
		t.Errorf("second Metrics serves the first one's counter:\n%s", body)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Counter("bordergate_test_events", "Events.").Add(context.Background(), 1)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("nil Metrics handler status = %d, want 404", rec.Code)
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Errorf("nil Metrics Shutdown: %v", err)
	}
}

func TestCounterInvalidName(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Counter with an invalid name did not panic")
		}
	}()
	m.Counter("1 invalid name", "Invalid.")
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return string(body)
}
