// Package decisionlog writes and reads bordergate's decision records: one JSON
// object per policy or pipeline decision, in the field names of Open Policy
// Agent decision-log events, plus the Matrix identifiers that auditors filter
// on. A [Writer] appends records to a JSON Lines file, masks message content
// with a [Masker] first, and by default returns only after the record is on
// stable storage. [Scan] and [ReadFile] read such files back.
package decisionlog

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// BundleName is the name of the pseudo-bundle under which a record stores the
// policy revision, in the place where OPA stores the revision of each bundle.
const BundleName = "bordergate"

// Values of [Record.Action] set by the gateway. The field is free text, so
// readers must accept other values too.
const (
	// ActionForward means the item was sent on to its destination.
	ActionForward = "forward"
	// ActionWithheld means the item was allowed but not sent, because
	// another item of the same signed transaction was denied.
	ActionWithheld = "withheld"
	// ActionDenied means policy denied the item, so it was not sent.
	ActionDenied = "denied"
	// ActionRejected means the gateway refused the item before or instead
	// of policy: a bad signature, a malformed event, a pipeline error.
	ActionRejected = "rejected"
	// ActionRedacted means policy denied an event of a response, and the
	// event was passed on in its room version's redacted form.
	ActionRedacted = "redacted"
	// ActionRemoved means an event of a response failed verification or
	// was denied outright, and was left out of the response.
	ActionRemoved = "removed"
	// ActionAnswered means the gateway returned the response itself without
	// contacting the destination.
	ActionAnswered = "answered"
)

// Record is one decision. The fields decision_id, timestamp, path, labels,
// bundles, trace_id, span_id, input, result, erased and masked keep the
// names and meaning of OPA decision-log events, so that records can be sent
// to any OPA-compatible decision-log service. Matrix identifiers are under
// matrix, and the outcome of the decision (allow, action, status,
// withheld_by, error) is at top level.
//
// A Writer does not modify the Record passed to it; it masks and fills a
// copy.
type Record struct {
	// DecisionID is a random UUID (version 4) from [NewID]. The gateway also
	// returns it in its error responses, so that an operator can find the
	// record behind a rejection.
	DecisionID string `json:"decision_id"`

	// Timestamp is the time of the decision. A Writer writes it in UTC, as
	// RFC 3339 with nanoseconds.
	Timestamp time.Time `json:"timestamp"`

	// Path is the policy decision that was queried, for example
	// "bordergate/pdu/decision".
	Path string `json:"path"`

	// Labels describe the gateway instance: "id" is the instance ID and
	// "version" the bordergate version. A Writer adds its
	// [Options.Labels] to the labels that the record does not set.
	Labels map[string]string `json:"labels,omitempty"`

	// Bundles maps a bundle name to its revision. Bordergate uses the one
	// bundle [BundleName], whose revision is the policy revision.
	Bundles map[string]BundleInfo `json:"bundles,omitempty"`

	// TraceID is the trace ID of the request in W3C Trace Context form (32
	// hex digits), when the request is traced.
	TraceID string `json:"trace_id,omitempty"`

	// SpanID is the span ID of the decision in W3C Trace Context form (16
	// hex digits), when the request is traced.
	SpanID string `json:"span_id,omitempty"`

	// Matrix contains the Matrix identifiers of the request, event or EDU.
	Matrix *Matrix `json:"matrix,omitempty"`

	// Allow reports whether the decision allowed the item.
	Allow bool `json:"allow"`

	// Action is the gateway's handling of the item: ActionForward,
	// ActionWithheld, ActionDenied, ActionRejected, ActionRedacted,
	// ActionRemoved or ActionAnswered.
	Action string `json:"action,omitempty"`

	// Status is the HTTP status code of the gateway's response, or 0 when
	// unknown.
	Status int `json:"status,omitempty"`

	// WithheldBy is the DecisionID of the denied item that caused this item's
	// transaction to be withheld.
	WithheldBy string `json:"withheld_by,omitempty"`

	// Error is the pipeline error behind the decision, for example an invalid
	// signature, when the pipeline denied the item before policy evaluation.
	Error string `json:"error,omitempty"`

	// Input is the policy input document. A Writer writes it masked.
	Input any `json:"input,omitempty"`

	// Result is the decision object that the policy returned.
	Result any `json:"result,omitempty"`

	// Erased lists the JSON pointers (RFC 6901) of the values that masking
	// removed from Input or Result.
	Erased []string `json:"erased,omitempty"`

	// Masked lists the JSON pointers of the values that masking replaced,
	// with the upsert rules of a mask policy.
	Masked []string `json:"masked,omitempty"`

	// MaskError says why the record has no input and no result: its mask
	// policy failed, so the Writer erased both rather than write them
	// unmasked. A Writer sets it; callers leave it empty.
	MaskError string `json:"mask_error,omitempty"`

	// Checkpoint is set only in checkpoint records (Path CheckpointPath),
	// which the Writer makes itself. Write rejects records that set it.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`

	// Chain links the record to the one before it. The Writer appends it
	// to every record as the last member; Write ignores the caller's value.
	Chain *Chain `json:"chain,omitempty"`
}

// BundleInfo describes one policy bundle in [Record.Bundles].
type BundleInfo struct {
	// Revision is the revision of the bundle.
	Revision string `json:"revision"`
}

// Matrix contains the Matrix identifiers of a decision. Every field is
// omitted from the JSON when empty.
type Matrix struct {
	// Direction is "inbound" for traffic from a peer server to the local
	// homeserver and "outbound" for the opposite direction.
	Direction string `json:"direction,omitempty"`

	// Origin is the server name of the sender of the request.
	Origin string `json:"origin,omitempty"`

	// Destination is the server name that the request is addressed to.
	Destination string `json:"destination,omitempty"`

	// Endpoint is the endpoint ID of the gateway's routing table, for
	// example "send" or "make_join".
	Endpoint string `json:"endpoint,omitempty"`

	// Method is the HTTP method of the request.
	Method string `json:"method,omitempty"`

	// TxnID is the transaction ID of a /send request.
	TxnID string `json:"txn_id,omitempty"`

	// RoomID is the room of the event or request.
	RoomID string `json:"room_id,omitempty"`

	// RoomVersion is the room version that the event was checked against.
	RoomVersion string `json:"room_version,omitempty"`

	// RoomVersionSource is the source of RoomVersion, for example the rooms
	// table or the room's create event.
	RoomVersionSource string `json:"room_version_source,omitempty"`

	// EventID is the event ID of the PDU.
	EventID string `json:"event_id,omitempty"`

	// EventType is the "type" of the PDU.
	EventType string `json:"event_type,omitempty"`

	// EDUType is the "edu_type" of the EDU.
	EDUType string `json:"edu_type,omitempty"`

	// Sender is the user ID that sent the event or EDU.
	Sender string `json:"sender,omitempty"`
}

// NewRecord returns a record with a new decision ID, the current time in
// UTC and the given policy path.
func NewRecord(path string) *Record {
	return &Record{
		DecisionID: NewID(),
		Timestamp:  time.Now().UTC(),
		Path:       path,
	}
}

// PolicyBundles returns a [Record.Bundles] value that names the policy
// revision under [BundleName].
func PolicyBundles(revision string) map[string]BundleInfo {
	return map[string]BundleInfo{BundleName: {Revision: revision}}
}

// NewID returns a random UUID of version 4 (RFC 9562) in its 36-character
// text form, read from crypto/rand.
func NewID() string {
	var id [16]byte
	// Since Go 1.24, rand.Read never returns an error, because it crashes
	// the program when the operating system cannot supply random bytes.
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // variant 10, as RFC 9562 defines

	var text [36]byte
	hex.Encode(text[0:8], id[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], id[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], id[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], id[8:10])
	text[23] = '-'
	hex.Encode(text[24:36], id[10:16])
	return string(text[:])
}
