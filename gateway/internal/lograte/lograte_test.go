package lograte

import (
	"testing"
	"time"
)

func TestLimiterAllow(t *testing.T) {
	l := &Limiter{Interval: 10 * time.Second}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at             time.Duration
		wantOK         bool
		wantSuppressed int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{11 * time.Second, false, 0},
		{time.Minute, true, 1},
		{2 * time.Minute, true, 0},
	}
	for _, step := range steps {
		suppressed, ok := l.Allow(start.Add(step.at))
		if ok != step.wantOK || suppressed != step.wantSuppressed {
			t.Errorf("Allow(+%s) = %d, %t; want %d, %t", step.at, suppressed, ok, step.wantSuppressed, step.wantOK)
		}
	}
}

func TestLimiterZeroValue(t *testing.T) {
	var l Limiter
	now := time.Now()
	for i := range 3 {
		if suppressed, ok := l.Allow(now); !ok || suppressed != 0 {
			t.Errorf("Allow #%d = %d, %t; want 0, true", i, suppressed, ok)
		}
	}
}
