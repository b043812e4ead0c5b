package policycmd

import (
	"cmp"
	"slices"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// ReplayReport is the report of Replay, and its JSON form.
type ReplayReport struct {
	// Policy is the candidate policy.
	Policy PolicyInfo `json:"policy"`
	// Files are the decision logs read, in the order given.
	Files []FileCount `json:"files"`
	// RecordedRevisions counts the records by the policy revision that
	// decided them, most frequent first.
	RecordedRevisions []RevisionCount `json:"recorded_revisions"`
	// Records is the number of well-formed records read.
	Records int `json:"records"`
	// Totals add up Kinds, with the records of unknown paths.
	Totals KindCounts `json:"totals"`
	// Kinds are the counts by kind of decision: request, pdu and edu.
	Kinds map[policy.Kind]*KindCounts `json:"kinds"`
	// AllowToDeny are the records that the policy allowed and the
	// candidate denies, or fails to evaluate, which the gateway treats as
	// a denial.
	AllowToDeny Group `json:"allow_to_deny"`
	// DenyToAllow are the records that the policy denied and the candidate
	// allows.
	DenyToAllow Group `json:"deny_to_allow"`
	// ReasonsAdded are the reasons that the candidate gives and the
	// recorded decision did not, most frequent first.
	ReasonsAdded []ReasonGroup `json:"reasons_added"`
	// ReasonsRemoved are the recorded reasons that the candidate no longer
	// gives, most frequent first.
	ReasonsRemoved []ReasonGroup `json:"reasons_removed"`
	// Errors are the records whose evaluation by the candidate failed.
	Errors Group `json:"errors"`
	// Masked are the records that cannot be replayed faithfully because
	// masking removed input that the candidate reads.
	Masked MaskedGroups `json:"masked"`
	// Skipped are the records without a policy decision to replay.
	Skipped SkippedGroups `json:"skipped"`
	// Malformed are the lines that are not decision records.
	Malformed MalformedLines `json:"malformed"`
}

// Changed reports the number of decisions that change between allow and
// deny.
func (r *ReplayReport) Changed() int {
	return r.Totals.AllowToDeny + r.Totals.DenyToAllow
}

// PolicyInfo names the candidate policy.
type PolicyInfo struct {
	Paths    []string `json:"paths"`
	DataFile string   `json:"data_file,omitempty"`
	Revision string   `json:"revision"`
}

// FileCount counts the lines of one decision log.
type FileCount struct {
	File      string `json:"file"`
	Records   int    `json:"records"`
	Malformed int    `json:"malformed"`
}

// RevisionCount counts the records of one policy revision. The revision is
// "" for records without one.
type RevisionCount struct {
	Revision string `json:"revision"`
	Count    int    `json:"count"`
}

// KindCounts counts the records of one kind of decision. Each record is
// counted once in Masked, Skipped or Replayed. Each replayed record is
// counted once in Unchanged, AllowToDeny, DenyToAllow or ReasonsChanged, or
// in Errors alone when its recorded decision was a denial.
type KindCounts struct {
	Replayed  int `json:"replayed"`
	Unchanged int `json:"unchanged"`
	// AllowToDeny and DenyToAllow count the records whose allow changes.
	AllowToDeny int `json:"allow_to_deny"`
	DenyToAllow int `json:"deny_to_allow"`
	// ReasonsChanged counts the records whose allow stays and whose
	// reasons change.
	ReasonsChanged int `json:"reasons_changed"`
	// Errors counts the records whose evaluation failed.
	Errors  int `json:"errors"`
	Masked  int `json:"masked"`
	Skipped int `json:"skipped"`
}

// Group is a set of records with bounded examples.
type Group struct {
	Count    int       `json:"count"`
	Examples []Example `json:"examples"`
}

// ReasonGroup is the records in which one reason appears or disappears.
type ReasonGroup struct {
	Reason string `json:"reason"`
	// Kinds counts the records by kind of decision.
	Kinds map[policy.Kind]int `json:"kinds"`
	Group
}

// MaskedGroups are the records that masking keeps from being replayed.
type MaskedGroups struct {
	// Count is the number of records. A record with two such pointers is
	// counted in two Pointers.
	Count    int            `json:"count"`
	Pointers []PointerGroup `json:"pointers"`
}

// PointerGroup is the records whose input was masked at one JSON pointer
// that the candidate reads.
type PointerGroup struct {
	Pointer string `json:"pointer"`
	// Read and Location name the first place where the candidate reads the
	// masked value, such as input.pdu.content.body at pdu.rego:12:3.
	Read     string `json:"read,omitempty"`
	Location string `json:"location,omitempty"`
	Group
}

// SkippedGroups are the records without a policy decision to replay.
type SkippedGroups struct {
	Count   int         `json:"count"`
	Reasons []SkipGroup `json:"reasons"`
}

// SkipGroup is the records skipped for one reason.
type SkipGroup struct {
	Reason      SkipReason `json:"reason"`
	Description string     `json:"description"`
	Group
}

// MalformedLines are the lines that are not decision records, and the read
// errors that ended a file early.
type MalformedLines struct {
	Count int             `json:"count"`
	Lines []MalformedLine `json:"lines"`
}

// MalformedLine is one line that is not a decision record.
type MalformedLine struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Example identifies one record of a group.
type Example struct {
	DecisionID string      `json:"decision_id"`
	Kind       policy.Kind `json:"kind,omitempty"`
	File       string      `json:"file"`
	Line       int         `json:"line"`
	Timestamp  time.Time   `json:"timestamp"`

	Direction string `json:"direction,omitempty"`
	Origin    string `json:"origin,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	EventType string `json:"event_type,omitempty"`
	EDUType   string `json:"edu_type,omitempty"`

	// Recorded is the policy's decision in the record, Replayed the
	// candidate's, when there are such decisions.
	Recorded *Outcome `json:"recorded,omitempty"`
	Replayed *Outcome `json:"replayed,omitempty"`
	// Error is the candidate's evaluation error, or the record's own error
	// for a skipped record.
	Error string `json:"error,omitempty"`
}

// newExample returns the example of rec, found at file and line.
func newExample(file string, line int, kind policy.Kind, rec *decisionlog.Record) Example {
	example := Example{DecisionID: rec.DecisionID, Kind: kind, File: file, Line: line, Timestamp: rec.Timestamp}
	if m := rec.Matrix; m != nil {
		example.Direction, example.Origin, example.Endpoint = m.Direction, m.Origin, m.Endpoint
		example.EventID, example.EventType, example.EDUType = m.EventID, m.EventType, m.EDUType
	}
	return example
}

// compareExamples orders examples by time, then decision ID and place, so
// that the examples kept do not depend on the order of the files.
func compareExamples(a, b Example) int {
	return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.DecisionID, b.DecisionID),
		cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
}

// addExample inserts example into the sorted list examples and keeps the
// first limit.
func addExample(examples []Example, example Example, limit int) []Example {
	if len(examples) == limit && (limit == 0 || compareExamples(example, examples[limit-1]) >= 0) {
		return examples
	}
	i, _ := slices.BinarySearchFunc(examples, example, compareExamples)
	examples = slices.Insert(examples, i, example)
	return examples[:min(len(examples), limit)]
}

// newGroup returns an empty group, whose examples encode as [] in JSON.
func newGroup() Group {
	return Group{Examples: []Example{}}
}

// add counts one record in g and keeps it as an example if it is among the
// first limit.
func (g *Group) add(example Example, limit int) {
	g.Count++
	g.Examples = addExample(g.Examples, example, limit)
}

// sortedByCount returns the groups of a map, most frequent first, then by
// key.
func sortedByCount[G any](groups map[string]*G, count func(*G) int) []G {
	keys := make([]string, 0, len(groups))
	for key := range groups {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(count(groups[b]), count(groups[a])), cmp.Compare(a, b))
	})
	sorted := make([]G, len(keys))
	for i, key := range keys {
		sorted[i] = *groups[key]
	}
	return sorted
}
