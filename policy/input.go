package policy

import "time"

// InputVersion is the version of the policy input document described by the
// types in this file. It changes only when a field is removed or changes meaning.
const InputVersion = 1

// Direction is the way an item travels across the gateway.
type Direction string

// Directions of a request, PDU or EDU.
const (
	// DirectionInbound is an item that arrives from a remote server for the
	// local homeserver, including PDUs in the response to an outbound request.
	DirectionInbound Direction = "inbound"
	// DirectionOutbound is an item that the local homeserver sends to a remote
	// server, including PDUs in the response to an inbound request.
	DirectionOutbound Direction = "outbound"
)

// KeySource is the source of the key that verified a request signature.
type KeySource string

// Key sources of Origin.KeySource.
const (
	KeySourceNone   KeySource = ""       // no key was used (unsigned request)
	KeySourcePinned KeySource = "pinned" // pinned_keys of the allow-list entry
	KeySourceServer KeySource = "server" // fetched from the origin's /_matrix/key/v2/server
	KeySourceNotary KeySource = "notary" // fetched from a configured notary server
)

// VersionSource is the source from which the gateway learned a room's version.
type VersionSource string

// Version sources of Room.VersionSource.
const (
	VersionSourceCreateEvent VersionSource = "create_event" // m.room.create event of the room
	VersionSourceInvite      VersionSource = "invite"       // room_version of an invite request
	VersionSourceMakeJoin    VersionSource = "make_join"    // room_version of a make_join response
	VersionSourceSendJoin    VersionSource = "send_join"    // state returned by send_join
	VersionSourceSeed        VersionSource = "seed"         // rooms seed file of the gateway
	VersionSourceUnknown     VersionSource = "unknown"      // not known, so the event could not be checked
)

// RequestInput is the input of the request decision
// (data.bordergate.request.decision).
type RequestInput struct {
	Version     int         `json:"version"`
	Kind        Kind        `json:"kind"`
	Direction   Direction   `json:"direction"`
	Request     Request     `json:"request"`
	Origin      Origin      `json:"origin"`
	Destination Destination `json:"destination"`
	TLS         TLS         `json:"tls"`
	// Now is the gateway's clock at decision time, in RFC 3339.
	Now string `json:"now"`
}

// PDUInput is the input of the PDU decision (data.bordergate.pdu.decision),
// made once for each PDU.
type PDUInput struct {
	Version     int         `json:"version"`
	Kind        Kind        `json:"kind"`
	Direction   Direction   `json:"direction"`
	Request     Request     `json:"request"`
	Origin      Origin      `json:"origin"`
	Destination Destination `json:"destination"`
	TLS         TLS         `json:"tls"`
	Now         string      `json:"now"`
	Transaction Transaction `json:"transaction"`
	Room        Room        `json:"room"`
	PDU         PDU         `json:"pdu"`
	Verified    Verified    `json:"verified"`
	// SenderEntry is the allow-list entry of the sender's server, nil when
	// that server is not on the allow-list.
	SenderEntry *AllowlistEntry `json:"sender_entry"`
	// SenderDenyEntry is the deny entry that matches the sender's server,
	// nil when none does.
	SenderDenyEntry *AllowlistEntry `json:"sender_deny_entry"`
	// SenderLocal reports whether the sender's server is one of the gateway's
	// own server names.
	SenderLocal bool `json:"sender_local"`
}

// EDUInput is the input of the EDU decision (data.bordergate.edu.decision),
// made once for each EDU.
type EDUInput struct {
	Version     int         `json:"version"`
	Kind        Kind        `json:"kind"`
	Direction   Direction   `json:"direction"`
	Request     Request     `json:"request"`
	Origin      Origin      `json:"origin"`
	Destination Destination `json:"destination"`
	TLS         TLS         `json:"tls"`
	Now         string      `json:"now"`
	Transaction Transaction `json:"transaction"`
	EDU         EDU         `json:"edu"`
	// RoomIDs are the rooms that the EDU names, read from the content of
	// m.typing and m.receipt EDUs, and nil for other EDU types.
	RoomIDs []string `json:"room_ids"`
}

// Request describes the HTTP request that carried the item, or whose
// response carried it.
type Request struct {
	Method string `json:"method"`
	// Path is the raw request target path as received, without the query.
	Path string `json:"path"`
	// Query is the raw query string, without the leading "?".
	Query string `json:"query"`
	// Endpoint is the endpoint ID of the gateway's routing table, such as "send".
	Endpoint string `json:"endpoint"`
	// PathParams are the decoded path parameters (room_id, event_id, user_id,
	// txn_id, ...), keyed by snake_case name.
	PathParams map[string]string `json:"path_params"`
	// Authenticated reports whether an X-Matrix signature was verified.
	Authenticated bool `json:"authenticated"`
	// BodySize is the size of the request body in bytes.
	BodySize int64 `json:"body_size"`
}

// Origin is the server that sent the item: the X-Matrix origin of a request,
// or, for the PDUs of a response, the server that sent the response.
type Origin struct {
	ServerName string `json:"server_name"`
	// KeyID is the key that verified the request signature, "" when none did.
	KeyID     string    `json:"key_id"`
	KeySource KeySource `json:"key_source"`
	// Allowlisted reports whether ServerName matches an allow-list entry.
	Allowlisted bool `json:"allowlisted"`
	// Entry is the matching allow-list entry, nil when there is none.
	Entry *AllowlistEntry `json:"entry"`
	// DenyEntry is the deny entry that matches ServerName, nil when none
	// does. A server with a deny entry has Allowlisted false and no Entry.
	DenyEntry *AllowlistEntry `json:"deny_entry"`
}

// Destination is the server that the item is sent to.
type Destination struct {
	ServerName string `json:"server_name"`
	// Allowlisted reports whether ServerName matches an allow-list entry. Local
	// server names are normally not on the allow-list, so it is false on
	// inbound items.
	Allowlisted bool `json:"allowlisted"`
	// Entry is the matching allow-list entry, nil when there is none.
	Entry *AllowlistEntry `json:"entry"`
	// DenyEntry is the deny entry that matches ServerName, nil when none
	// does. A server with a deny entry has Allowlisted false and no Entry.
	DenyEntry *AllowlistEntry `json:"deny_entry"`
}

// TLS describes the client certificate of the TLS connection that carried an
// inbound request. It is all false and empty for outbound items.
type TLS struct {
	// ClientCertificate reports whether the peer presented a client certificate.
	ClientCertificate bool `json:"client_certificate"`
	// Verified reports whether the certificate chain verified against the
	// client CA of the inbound listener.
	Verified bool `json:"verified"`
	// Subject is the certificate subject as a distinguished name string.
	Subject  string   `json:"subject"`
	DNSNames []string `json:"dns_names"`
	// MatchesOrigin reports whether the verified certificate names the origin.
	MatchesOrigin bool `json:"matches_origin"`
}

// AllowlistEntry is an allow-list entry in the shape of the policy input.
type AllowlistEntry struct {
	// ServerName is the entry's server name pattern, which may contain * and ?.
	ServerName     string `json:"server_name"`
	Administration string `json:"administration"`
	// PinnedKeys maps key IDs to base64 Ed25519 public keys, padded or not as
	// the allow-list writes them.
	PinnedKeys  map[string]string `json:"pinned_keys"`
	RevokedKeys []string          `json:"revoked_keys"`
	// Address is the host:port used instead of server discovery, "" for none.
	Address     string `json:"address"`
	RequireMTLS bool   `json:"require_mtls"`
	// Endpoints are the permitted endpoint IDs, "*" for all.
	Endpoints []string `json:"endpoints"`
	// EventTypes are the permitted event types, "*" for all, nil when the entry
	// does not restrict event types.
	EventTypes []string `json:"event_types"`
	// Expires is the RFC 3339 time from which the entry no longer applies,
	// "" when it does not expire.
	Expires string `json:"expires"`
	// Expired reports whether the decision's now is at or after Expires.
	// A rule that reads Expired instead of comparing Expires with now
	// keeps the decision a function of the entry, which lets the engine
	// reuse it.
	Expired bool              `json:"expired"`
	Labels  map[string]string `json:"labels"`
	// Deny marks a deny entry, which refuses the servers it matches.
	Deny bool `json:"deny"`
	// Note is the entry's free text, "" for none.
	Note string `json:"note"`
	// Source names where the entry comes from: "file", "api",
	// "import:NAME", "signed:NAME" or a bundle.
	Source string `json:"source"`
	// ChangedBy is who last changed the entry, "" when unknown.
	ChangedBy string `json:"changed_by"`
	// ChangedAt is when the entry was last changed, in RFC 3339, "" when
	// unknown.
	ChangedAt string `json:"changed_at"`
}

// Transaction describes the /send transaction that carried a PDU or EDU. It is
// zero for PDUs that arrive outside a transaction.
type Transaction struct {
	TxnID    string `json:"txn_id"`
	PDUCount int    `json:"pdu_count"`
	EDUCount int    `json:"edu_count"`
}

// Room is the room of a PDU.
type Room struct {
	RoomID string `json:"room_id"`
	// Version is the room version used to check the event, "" when unknown.
	Version       string        `json:"version"`
	VersionSource VersionSource `json:"version_source"`
}

// PDU holds the fields of an event that policies use.
type PDU struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// StateKey is nil when the event is not a state event.
	StateKey *string `json:"state_key"`
	Sender   string  `json:"sender"`
	// SenderServer is the server name part of Sender.
	SenderServer   string `json:"sender_server"`
	OriginServerTS int64  `json:"origin_server_ts"`
	// Content is the event content, redacted by the room version's redaction
	// algorithm when the content hash did not match.
	Content map[string]any `json:"content"`
	// Redacts is the event ID that an m.room.redaction event redacts, from the
	// top level or from content as the room version places it, "" for none.
	Redacts string `json:"redacts"`
	Depth   int64  `json:"depth"`
	// PrevEvents and AuthEvents are event IDs. Room versions 1 and 2 list
	// [event_id, hashes] pairs, of which only the IDs are kept.
	PrevEvents []string `json:"prev_events"`
	AuthEvents []string `json:"auth_events"`
}

// Verified records which checks the gateway ran on a PDU and their outcome.
type Verified struct {
	// Format reports whether the event matches the room version's event format.
	Format bool `json:"format"`
	// Signatures reports whether every required server signature verified.
	Signatures bool `json:"signatures"`
	// ContentHash reports whether the content hash matched.
	ContentHash bool `json:"content_hash"`
	// EventID reports whether the event ID matches the event.
	EventID bool `json:"event_id"`
	// SignedBy are the server names whose signatures verified.
	SignedBy []string `json:"signed_by"`
	// RedactedForHash reports whether PDU.Content was redacted because the
	// content hash did not match.
	RedactedForHash bool `json:"redacted_for_hash"`
	// Template reports that the event is a make_join, make_knock or
	// make_leave template: not yet hashed or signed, so only its format
	// and its match with the request were checked.
	Template bool `json:"template,omitempty"`
}

// EDU is an ephemeral data unit of a transaction.
type EDU struct {
	EDUType string         `json:"edu_type"`
	Content map[string]any `json:"content"`
}

// FormatNow formats t as the RFC 3339 value of the now input field, in UTC.
func FormatNow(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// NewRequestInput returns a request input with its version, kind, direction
// and time set.
func NewRequestInput(direction Direction, now time.Time) *RequestInput {
	return &RequestInput{
		Version:   InputVersion,
		Kind:      KindRequest,
		Direction: direction,
		Now:       FormatNow(now),
	}
}

// NewPDUInput returns a PDU input with its version, kind, direction and time
// set.
func NewPDUInput(direction Direction, now time.Time) *PDUInput {
	return &PDUInput{
		Version:   InputVersion,
		Kind:      KindPDU,
		Direction: direction,
		Now:       FormatNow(now),
	}
}

// NewEDUInput returns an EDU input with its version, kind, direction and time
// set.
func NewEDUInput(direction Direction, now time.Time) *EDUInput {
	return &EDUInput{
		Version:   InputVersion,
		Kind:      KindEDU,
		Direction: direction,
		Now:       FormatNow(now),
	}
}
