package testfed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// metricPollInterval is how often WaitForMetric reads /metrics again.
const metricPollInterval = 50 * time.Millisecond

// Signal sends sig to the running bordergate process, such as
// syscall.SIGHUP to make it reload.
func (gw *Gateway) Signal(sig os.Signal) error {
	if gw.proc == nil {
		return errors.New("signal bordergate: not started")
	}
	select {
	case <-gw.proc.exited():
		return fmt.Errorf("signal bordergate: %w", gw.proc.exitError())
	default:
	}
	if err := gw.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal bordergate: %w", err)
	}
	return nil
}

// Metric returns the value of one series of the admin listener's
// /metrics, written as it appears there, such as
// `bordergate_reloads_total{source="policy_files"}`. A series that the
// gateway has not exported yet is 0.
func (gw *Gateway) Metric(ctx context.Context, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.AdminURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read metrics: status %d", resp.StatusCode)
	}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		value, ok := strings.CutPrefix(scanner.Text(), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: value %q: %w", series, value, err)
		}
		return v, nil
	}
	if err := scanner.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, nil
}

// WaitForMetric polls /metrics until series is at least minimum, and
// returns its value. Set a deadline on ctx.
func (gw *Gateway) WaitForMetric(ctx context.Context, series string, minimum float64) (float64, error) {
	ticker := time.NewTicker(metricPollInterval)
	defer ticker.Stop()
	for {
		value, err := gw.Metric(ctx, series)
		if err == nil && value >= minimum {
			return value, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return value, fmt.Errorf("wait for %s >= %g: %w (last read: %v)", series, minimum, ctx.Err(), err)
			}
			return value, fmt.Errorf("wait for %s >= %g: %w (value %g)", series, minimum, ctx.Err(), value)
		case <-ticker.C:
		}
	}
}
