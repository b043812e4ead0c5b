// Package modlist turns the server rules of a Matrix moderation policy
// list into allow-list deny entries.
//
// A moderation policy list is a Matrix room whose state holds policy rules.
// Parse reads an export of that state and takes the m.policy.rule.server
// rules whose recommendation is m.ban. The Matrix specification defines
// only m.ban, so a rule with any other recommendation is reported and
// skipped, as is a malformed rule: the list's author meant something that
// the gateway would have to guess.
package modlist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bordergate/bordergate/gateway/servername"
	"github.com/bordergate/bordergate/gateway/store"
)

// Event types and the recommendation of the Matrix moderation policy
// lists.
const (
	// RuleServerType is the state event type of a server rule.
	RuleServerType = "m.policy.rule.server"
	// RecommendationBan is the only recommendation that the Matrix
	// specification defines.
	RecommendationBan = "m.ban"
)

// legacyRuleTypes are the event types that rules had before the
// specification named them. They are reported, not imported.
var legacyRuleTypes = map[string]bool{
	"m.room.rule.server":             true,
	"org.matrix.mjolnir.rule.server": true,
}

// Labels that Parse sets on each deny entry.
const (
	LabelPolicyRoom    = "policy_room"
	LabelPolicyEventID = "policy_event_id"
)

// MaxEvents is the maximum number of events that Parse reads.
const MaxEvents = 100000

// Result is the outcome of parsing a policy list.
type Result struct {
	// Entries are the deny entries, one per banned entity, in the order of
	// the export.
	Entries []store.Entry `json:"-"`
	// Skipped are the server rules that became no entry, with why.
	Skipped []Report `json:"skipped"`
	// Notices are changes made to rules that became entries, such as a
	// shortened reason.
	Notices []Report `json:"notices"`
	// RemovedRules counts server rules with empty content, which is how a
	// rule is removed from a policy room.
	RemovedRules int `json:"removed_rules"`
	// OtherEvents counts the events of other types, such as user and room
	// rules and the room's own state.
	OtherEvents int `json:"other_events"`
}

// Report names one rule of the export and what happened to it.
type Report struct {
	// Index is the position of the event in the export, from 0.
	Index    int    `json:"index"`
	EventID  string `json:"event_id,omitempty"`
	StateKey string `json:"state_key,omitempty"`
	Entity   string `json:"entity,omitempty"`
	Problem  string `json:"problem"`
}

// String formats the report as "events[INDEX] (EVENT_ID): PROBLEM". An
// event ID with a character that is not printable, such as the escape
// that starts a terminal control sequence, is quoted as a Go string,
// because it comes from the list's authors and ends on a terminal.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "events[%d]", r.Index)
	switch {
	case r.EventID == "":
	case strings.IndexFunc(r.EventID, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		fmt.Fprintf(&b, " (%q)", r.EventID)
	default:
		fmt.Fprintf(&b, " (%s)", r.EventID)
	}
	b.WriteString(": ")
	b.WriteString(r.Problem)
	return b.String()
}

// event is the part of a state event that Parse reads.
type event struct {
	Type     string          `json:"type"`
	StateKey *string         `json:"state_key"`
	EventID  string          `json:"event_id"`
	RoomID   string          `json:"room_id"`
	Content  json.RawMessage `json:"content"`
}

// rule is the content of a server rule.
type rule struct {
	Entity         *string `json:"entity"`
	Recommendation *string `json:"recommendation"`
	Reason         *string `json:"reason"`
}

// Options configures Parse.
type Options struct {
	// LocalServerNames are the gateway's own server names. A ban that
	// matches one of them is skipped, because it would deny the local
	// homeserver's own users.
	LocalServerNames []string
}

// Parse reads an export of a policy room's state: a JSON array of events,
// as the client-server API's GET /rooms/{roomId}/state returns, or an
// object whose pdus member is that array, as the federation API's
// GET /state/{roomId} returns. It returns an error only when the export as
// a whole cannot be read. Rules that it cannot import are in
// Result.Skipped: among them, bans whose entity names no domain, such as
// "*" or "*.*", which would end all federation, and bans of a local
// server name. The authors of a policy list are outside the
// administration, so one rule of theirs must not cut it off.
func Parse(data []byte, opts Options) (Result, error) {
	events, err := decodeEvents(data)
	if err != nil {
		return Result{}, err
	}
	p := parser{
		opts:      opts,
		entities:  make(map[string]int),
		stateKeys: make(map[string]int),
	}
	for i, raw := range events {
		p.addEvent(i, raw)
	}
	return p.result, nil
}

// parser is the state of one Parse.
type parser struct {
	opts   Options
	result Result
	// entities maps a lower-case entity to the index of its entry.
	entities map[string]int
	// stateKeys maps the state key of a server rule to the index of the
	// first event with it.
	stateKeys map[string]int
}

// decodeEvents returns the events of the export, undecoded.
func decodeEvents(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	var events []json.RawMessage
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("policy list is empty (expected a JSON array of state events, or an object with a pdus array)")
	case trimmed[0] == '[':
		if err := json.Unmarshal(data, &events); err != nil {
			return nil, fmt.Errorf("invalid policy list (expected a JSON array of state events): %w", err)
		}
	case trimmed[0] == '{':
		var response struct {
			PDUs *[]json.RawMessage `json:"pdus"`
		}
		if err := json.Unmarshal(data, &response); err != nil {
			return nil, fmt.Errorf("invalid policy list (expected an object with a pdus array): %w", err)
		}
		if response.PDUs == nil {
			return nil, errors.New("policy list object has no pdus array (expected the response of GET /_matrix/federation/v1/state/{roomId}, or an array of state events)")
		}
		events = *response.PDUs
	default:
		return nil, errors.New("invalid policy list (expected a JSON array of state events, or an object with a pdus array)")
	}
	if len(events) > MaxEvents {
		return nil, fmt.Errorf("policy list has %d events, more than %d", len(events), MaxEvents)
	}
	return events, nil
}

// addEvent adds the entry of one event, or reports why there is none.
func (p *parser) addEvent(index int, raw json.RawMessage) {
	r := &p.result
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		r.skip(Report{Index: index, Problem: "invalid event: " + err.Error()})
		return
	}
	report := Report{Index: index, EventID: ev.EventID}
	if ev.StateKey != nil {
		report.StateKey = *ev.StateKey
	}
	switch {
	case legacyRuleTypes[ev.Type]:
		report.Problem = fmt.Sprintf("event type %s is not imported (expected %s; re-issue the rule with that type)", ev.Type, RuleServerType)
		r.skip(report)
		return
	case ev.Type != RuleServerType:
		r.OtherEvents++
		return
	case ev.StateKey == nil:
		report.Problem = "server rule without a state_key (expected a state event)"
		r.skip(report)
		return
	}
	if first, repeated := p.stateKeys[*ev.StateKey]; repeated {
		notice := report
		notice.Problem = fmt.Sprintf("state_key %q of %s repeats events[%d]; a room's state holds one event per type and state key, so the export may not be the room's current state",
			*ev.StateKey, RuleServerType, first)
		r.Notices = append(r.Notices, notice)
	} else {
		p.stateKeys[*ev.StateKey] = index
	}

	content := bytes.TrimSpace(ev.Content)
	if len(content) == 0 || bytes.Equal(content, []byte("{}")) {
		r.RemovedRules++
		return
	}
	var c rule
	if err := json.Unmarshal(content, &c); err != nil {
		report.Problem = "invalid rule content: " + err.Error()
		r.skip(report)
		return
	}
	entry, problem := r.ruleEntry(&report, ev, c)
	if problem == "" {
		problem = p.tooWide(entry.ServerName)
	}
	if problem != "" {
		report.Problem = problem
		r.skip(report)
		return
	}
	key := strings.ToLower(entry.ServerName)
	if first, dup := p.entities[key]; dup {
		report.Problem = fmt.Sprintf("entity %q is also banned by an earlier rule, whose entry is kept (entries[%d])", entry.ServerName, first)
		r.Notices = append(r.Notices, report)
		return
	}
	p.entities[key] = len(r.Entries)
	r.Entries = append(r.Entries, entry)
}

// tooWide returns why a valid entity must not be banned, or "": it names
// no domain, so it matches every server name, or it matches a local server
// name.
func (p *parser) tooWide(entity string) string {
	host, _, err := servername.SplitPort(entity)
	if err == nil && strings.Trim(host, "*?.") == "" {
		return fmt.Sprintf("entity %q matches every server name and would end all federation (expected a server name, or a glob with a domain such as *.example.org)", entity)
	}
	for _, local := range p.opts.LocalServerNames {
		if store.PatternMatches(entity, local) {
			return fmt.Sprintf("entity %q matches the gateway's own server name %s (expected a rule for other servers)", entity, local)
		}
	}
	return ""
}

// ruleEntry returns the deny entry of a server rule, or a problem.
func (r *Result) ruleEntry(report *Report, ev event, c rule) (store.Entry, string) {
	if c.Entity == nil || *c.Entity == "" {
		return store.Entry{}, "rule without an entity (expected a server name or glob)"
	}
	report.Entity = *c.Entity
	if c.Recommendation == nil {
		return store.Entry{}, fmt.Sprintf("rule without a recommendation (expected %s)", RecommendationBan)
	}
	if *c.Recommendation != RecommendationBan {
		return store.Entry{}, fmt.Sprintf("recommendation %q is not supported (expected %s, the only one the Matrix specification defines)", *c.Recommendation, RecommendationBan)
	}
	entry := store.Entry{ServerName: *c.Entity, Deny: true}
	if c.Reason != nil {
		note, changed := cleanNote(*c.Reason)
		entry.Note = note
		if changed {
			notice := *report
			notice.Problem = fmt.Sprintf("reason shortened to %d bytes of text without control characters", len(note))
			r.Notices = append(r.Notices, notice)
		}
	}
	labels := map[string]string{}
	if ev.RoomID != "" {
		labels[LabelPolicyRoom] = ev.RoomID
	}
	if ev.EventID != "" {
		labels[LabelPolicyEventID] = ev.EventID
	}
	if len(labels) > 0 {
		entry.Labels = labels
	}
	if err := store.ValidateEntry(entry); err != nil {
		var entryErr *store.EntryError
		if errors.As(err, &entryErr) {
			return store.Entry{}, fmt.Sprintf("entity %q: %s: %s (expected %s)", *c.Entity, entryErr.Field, entryErr.Problem, entryErr.Expected)
		}
		return store.Entry{}, fmt.Sprintf("entity %q: %v", *c.Entity, err)
	}
	return entry, ""
}

func (r *Result) skip(report Report) {
	r.Skipped = append(r.Skipped, report)
}

// cleanNote makes a rule's reason a valid note: control characters become
// spaces and the text is cut to store.MaxNoteBytes at a character
// boundary. It reports whether the reason changed.
func cleanNote(reason string) (string, bool) {
	cleaned := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(reason, "\uFFFD"))
	for len(cleaned) > store.MaxNoteBytes {
		_, size := utf8.DecodeLastRuneInString(cleaned)
		cleaned = cleaned[:len(cleaned)-size]
	}
	return cleaned, cleaned != reason
}
