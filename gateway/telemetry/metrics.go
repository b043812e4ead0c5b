// Package telemetry holds the gateway's metrics: OpenTelemetry instruments
// whose values the admin listener serves in the Prometheus text format.
package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// meterName is the instrumentation scope of every bordergate instrument.
const meterName = "github.com/bordergate/bordergate"

// Metrics creates the gateway's instruments and serves their values. Each
// Metrics has its own Prometheus registry, so two gateways in one process,
// as in tests, do not share counters. A nil *Metrics is valid: its
// instruments discard what they record.
type Metrics struct {
	meter    metric.Meter
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// New returns a Metrics whose instruments are exported on [Metrics.Handler].
func New() (*Metrics, error) {
	registry := prometheus.NewRegistry()
	exporter, err := otelprometheus.New(
		otelprometheus.WithRegisterer(registry),
		otelprometheus.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("create metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	return &Metrics{
		meter:    provider.Meter(meterName),
		provider: provider,
		handler:  promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
	}, nil
}

// Meter returns the meter that creates the gateway's instruments. It
// returns a meter that discards everything when m is nil.
func (m *Metrics) Meter() metric.Meter {
	if m == nil {
		return noop.NewMeterProvider().Meter(meterName)
	}
	return m.meter
}

// Counter returns a monotonic counter named name, such as
// "bordergate_policy_reload_failures", with its description. The
// Prometheus exporter appends "_total" to the name. Counter panics when
// the name is not a valid instrument name, because names are constants of
// the caller.
func (m *Metrics) Counter(name, description string) metric.Int64Counter {
	counter, err := m.Meter().Int64Counter(name, metric.WithDescription(description))
	if err != nil {
		panic(fmt.Sprintf("telemetry: counter %q: %v", name, err))
	}
	return counter
}

// Gauge returns a gauge named name, with its description, whose value is
// the last one recorded. Gauge panics when the name is not a valid
// instrument name, because names are constants of the caller.
func (m *Metrics) Gauge(name, description string) metric.Int64Gauge {
	gauge, err := m.Meter().Int64Gauge(name, metric.WithDescription(description))
	if err != nil {
		panic(fmt.Sprintf("telemetry: gauge %q: %v", name, err))
	}
	return gauge
}

// Handler returns the handler that serves the metrics in the Prometheus
// text format. It returns 404 when m is nil.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Shutdown stops the meter provider. Instruments record nothing afterwards.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if m == nil {
		return nil
	}
	if err := m.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down metrics: %w", err)
	}
	return nil
}
