// Package lograte limits how often a repeated event is logged: the first
// one is logged at once, later ones at most once per interval, each with
// the number of events held back since the last one logged.
package lograte

import (
	"sync"
	"time"
)

// Limiter decides which occurrences of one repeated event to log. The zero
// value logs every occurrence. A Limiter is safe for concurrent use.
type Limiter struct {
	// Interval is the minimum time between two logged occurrences.
	Interval time.Duration

	mu         sync.Mutex // guards the fields below
	last       time.Time
	logged     bool
	suppressed int
}

// Allow reports whether the occurrence at now is to be logged and, when it
// is, how many occurrences were held back since the last logged one.
func (l *Limiter) Allow(now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logged && now.Sub(l.last) < l.Interval {
		l.suppressed++
		return 0, false
	}
	suppressed = l.suppressed
	l.last, l.logged, l.suppressed = now, true, 0
	return suppressed, true
}
