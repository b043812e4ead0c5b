package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// Decisions that [Filter.Decision] accepts.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Filter selects records. Each set field must match, and a list matches
// when any of its values does. The zero Filter selects every decision
// record and no checkpoint.
type Filter struct {
	// Since and Until bound the record's timestamp; Since is inclusive,
	// Until exclusive. The zero time leaves that end open.
	Since, Until time.Time
	// Origins, Destinations, Rooms, Endpoints and Directions match the
	// fields of the record's matrix member exactly.
	Origins, Destinations, Rooms, Endpoints, Directions []string
	// EventTypes match matrix.event_type or matrix.edu_type.
	EventTypes []string
	// Decision is DecisionAllow, DecisionDeny or empty for both.
	Decision string
	// Actions match the record's action.
	Actions []string
	// DecisionIDs match the record's decision_id.
	DecisionIDs []string
	// Reason is a substring that result.reasons or error must contain.
	Reason string
	// ReasonPattern is a regular expression that must match one of
	// result.reasons or error.
	ReasonPattern *regexp.Regexp
	// Checkpoints includes the checkpoint records, which are left out by
	// default.
	Checkpoints bool
}

// ParseTime parses a --since or --until value: an RFC 3339 time, a date
// (YYYY-MM-DD, midnight UTC), or a Go duration such as "90m", meaning that
// long before now.
func ParseTime(value string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, value); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(value); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("invalid time %q: the duration must not be negative", value)
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: write an RFC 3339 time (2026-03-14T09:00:00Z), a date (2026-03-14) or a duration before now (90m, 24h)", value)
}

// matcher is a Filter compiled for matching lines.
type matcher struct {
	filter Filter
	// needles are byte strings that a matching line contains: the line
	// must contain one needle of each group. They rule lines out before
	// any decoding.
	needles [][][]byte
}

// compile checks f and prepares its byte checks.
func compile(f Filter) (*matcher, error) {
	switch f.Decision {
	case "", DecisionAllow, DecisionDeny:
	default:
		return nil, fmt.Errorf("invalid decision %q, want %q or %q", f.Decision, DecisionAllow, DecisionDeny)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, fmt.Errorf("empty time range: since %s is not before until %s",
			f.Since.Format(time.RFC3339Nano), f.Until.Format(time.RFC3339Nano))
	}

	m := &matcher{filter: f}
	m.addMembers("origin", f.Origins)
	m.addMembers("destination", f.Destinations)
	m.addMembers("room_id", f.Rooms)
	m.addMembers("endpoint", f.Endpoints)
	m.addMembers("direction", f.Directions)
	m.addMembers("action", f.Actions)
	m.addMembers("decision_id", f.DecisionIDs)
	if len(f.EventTypes) > 0 {
		group := m.memberNeedles("event_type", f.EventTypes)
		m.needles = append(m.needles, append(group, m.memberNeedles("edu_type", f.EventTypes)...))
	}
	switch f.Decision {
	case DecisionAllow:
		m.needles = append(m.needles, [][]byte{[]byte(`"allow":true`)})
	case DecisionDeny:
		m.needles = append(m.needles, [][]byte{[]byte(`"allow":false`)})
	}
	if f.Reason != "" && jsonString(f.Reason) == `"`+f.Reason+`"` {
		m.needles = append(m.needles, [][]byte{[]byte(f.Reason)})
	}
	return m, nil
}

// addMembers adds the needle group of a member that must have one of
// values.
func (m *matcher) addMembers(key string, values []string) {
	if len(values) > 0 {
		m.needles = append(m.needles, m.memberNeedles(key, values))
	}
}

// memberNeedles returns `"key":"value"` for each value, encoded as the
// Writer encodes it.
func (m *matcher) memberNeedles(key string, values []string) [][]byte {
	group := make([][]byte, 0, len(values))
	for _, v := range values {
		group = append(group, []byte(`"`+key+`":`+jsonString(v)))
	}
	return group
}

// jsonString returns s as a JSON string, escaped as the Writer escapes it.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// row is the part of a record that the filter and the table use.
type row struct {
	timestamp  time.Time
	decisionID string
	path       string
	allow      bool
	action     string
	status     int64
	errText    string
	reasons    []string
	matrix     map[string]string
}

// errNotObject is the error of decodeRow for a line that is not a JSON
// object.
var errNotObject = errors.New("line is not a JSON object")

// decodeRow reads the fields of a row from a line with one pass over its
// top-level members, skipping input and the others without decoding them.
func decodeRow(line []byte) (row, error) {
	if len(line) == 0 || line[0] != '{' || !gjson.ValidBytes(line) {
		return row{}, errNotObject
	}
	var r row
	gjson.ParseBytes(line).ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "timestamp":
			r.timestamp, _ = time.Parse(time.RFC3339Nano, value.Str)
		case "decision_id":
			r.decisionID = value.Str
		case "path":
			r.path = value.Str
		case "allow":
			r.allow = value.Type == gjson.True
		case "action":
			r.action = value.Str
		case "status":
			r.status = value.Int()
		case "error":
			r.errText = value.Str
		case "matrix":
			r.matrix = make(map[string]string)
			value.ForEach(func(k, v gjson.Result) bool {
				r.matrix[k.Str] = v.Str
				return true
			})
		case "result":
			for _, reason := range value.Get("reasons").Array() {
				r.reasons = append(r.reasons, reason.String())
			}
		}
		return true
	})
	return r, nil
}

// mayMatch rules a line out by its bytes alone, without decoding it.
func (m *matcher) mayMatch(line []byte) bool {
	for _, group := range m.needles {
		if !slices.ContainsFunc(group, func(n []byte) bool { return bytes.Contains(line, n) }) {
			return false
		}
	}
	f := &m.filter
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, ok := decisionlog.LineTimestamp(line)
		if !ok || !m.inRange(t) {
			return false
		}
	}
	return true
}

// inRange reports whether t is within the filter's time range.
func (m *matcher) inRange(t time.Time) bool {
	f := &m.filter
	return (f.Since.IsZero() || !t.Before(f.Since)) && (f.Until.IsZero() || t.Before(f.Until))
}

// matches reports whether a decoded row passes the filter.
func (m *matcher) matches(r *row) bool {
	f := &m.filter
	if r.path == decisionlog.CheckpointPath && !f.Checkpoints {
		return false
	}
	if !m.inRange(r.timestamp) && (!f.Since.IsZero() || !f.Until.IsZero()) {
		return false
	}
	checks := []struct {
		values []string
		value  string
	}{
		{f.Origins, r.matrix["origin"]},
		{f.Destinations, r.matrix["destination"]},
		{f.Rooms, r.matrix["room_id"]},
		{f.Endpoints, r.matrix["endpoint"]},
		{f.Directions, r.matrix["direction"]},
		{f.Actions, r.action},
		{f.DecisionIDs, r.decisionID},
	}
	for _, c := range checks {
		if len(c.values) > 0 && !slices.Contains(c.values, c.value) {
			return false
		}
	}
	if len(f.EventTypes) > 0 && !slices.Contains(f.EventTypes, r.matrix["event_type"]) &&
		!slices.Contains(f.EventTypes, r.matrix["edu_type"]) {
		return false
	}
	if f.Decision == DecisionAllow && !r.allow || f.Decision == DecisionDeny && r.allow {
		return false
	}
	return m.reasonMatches(r)
}

// reasonMatches applies the reason filters to result.reasons and error.
func (m *matcher) reasonMatches(r *row) bool {
	f := &m.filter
	if f.Reason == "" && f.ReasonPattern == nil {
		return true
	}
	texts := append([]string{r.errText}, r.reasons...)
	return slices.ContainsFunc(texts, func(text string) bool {
		if text == "" {
			return false
		}
		if f.Reason != "" && !strings.Contains(text, f.Reason) {
			return false
		}
		return f.ReasonPattern == nil || f.ReasonPattern.MatchString(text)
	})
}
