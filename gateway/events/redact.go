package events

import "github.com/bordergate/bordergate/gateway/canonicaljson"

// Redact returns the event v redacted with the algorithm of room version rv:
// top-level members outside the version's keep-list are removed, and
// `content` keeps only the members the version keeps for the event's type.
// `unsigned` is removed; `signatures` and `hashes` are kept. A `content`
// that is not an object becomes an empty object. v must be an object.
func Redact(v canonicaljson.Value, rv *RoomVersion) canonicaljson.Value {
	rules := rv.Redaction
	eventType, _ := v.GetString("type")
	members := make([]canonicaljson.Member, 0, v.Len())
	for _, m := range v.Members() {
		if !keepTopLevel(rules, m.Key) {
			continue
		}
		if m.Key == "content" {
			m.Value = redactContent(rules, eventType, m.Value)
		}
		members = append(members, m)
	}
	return canonicaljson.ObjectValue(members...)
}

func redactContent(rules RedactionRules, eventType string, content canonicaljson.Value) canonicaljson.Value {
	if content.Kind() != canonicaljson.Object {
		return canonicaljson.ObjectValue()
	}
	if keepsAllContent(rules, eventType) {
		return content
	}
	members := make([]canonicaljson.Member, 0, 2)
	for _, m := range content.Members() {
		switch keepContent(rules, eventType, m.Key) {
		case keepMember:
			members = append(members, m)
		case keepSignedOnly:
			if m.Value.Kind() != canonicaljson.Object {
				continue
			}
			m.Value = m.Value.Filter(func(key string) bool { return key == "signed" })
			members = append(members, m)
		}
	}
	return canonicaljson.ObjectValue(members...)
}

// appendRedacted appends the canonical JSON of [Redact](v, rv) to dst,
// without `signatures` unless withSignatures is set. It writes the encoding
// directly, without building the redacted value.
func appendRedacted(dst []byte, v canonicaljson.Value, rv *RoomVersion, withSignatures bool) []byte {
	rules := rv.Redaction
	eventType, _ := v.GetString("type")
	dst = append(dst, '{')
	first := true
	for _, m := range v.Members() {
		if !keepTopLevel(rules, m.Key) || (m.Key == "signatures" && !withSignatures) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = canonicaljson.AppendString(dst, m.Key)
		dst = append(dst, ':')
		if m.Key == "content" {
			dst = appendRedactedContent(dst, rules, eventType, m.Value)
		} else {
			dst = canonicaljson.Append(dst, m.Value)
		}
	}
	return append(dst, '}')
}

func appendRedactedContent(dst []byte, rules RedactionRules, eventType string, content canonicaljson.Value) []byte {
	if content.Kind() != canonicaljson.Object {
		return append(dst, "{}"...)
	}
	if keepsAllContent(rules, eventType) {
		return canonicaljson.Append(dst, content)
	}
	dst = append(dst, '{')
	first := true
	for _, m := range content.Members() {
		keep := keepContent(rules, eventType, m.Key)
		if keep == dropMember || (keep == keepSignedOnly && m.Value.Kind() != canonicaljson.Object) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = canonicaljson.AppendString(dst, m.Key)
		dst = append(dst, ':')
		if keep == keepSignedOnly {
			dst = appendSignedOnly(dst, m.Value)
		} else {
			dst = canonicaljson.Append(dst, m.Value)
		}
	}
	return append(dst, '}')
}

// appendSignedOnly appends the object invite reduced to its `signed` member.
func appendSignedOnly(dst []byte, invite canonicaljson.Value) []byte {
	signed, ok := invite.Get("signed")
	if !ok {
		return append(dst, "{}"...)
	}
	dst = append(dst, `{"signed":`...)
	dst = canonicaljson.Append(dst, signed)
	return append(dst, '}')
}

// keepTopLevel reports whether redaction keeps the top-level member key.
func keepTopLevel(rules RedactionRules, key string) bool {
	switch key {
	case "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
		"signatures", "depth", "prev_events", "auth_events", "origin_server_ts":
		return true
	case "origin", "membership", "prev_state":
		return rules < RedactionV11
	}
	return false
}

// keepsAllContent reports whether redaction keeps the whole content of
// events of eventType.
func keepsAllContent(rules RedactionRules, eventType string) bool {
	return eventType == "m.room.create" && rules >= RedactionV11
}

// contentKeep is the redaction outcome of one member of `content`.
type contentKeep uint8

const (
	dropMember contentKeep = iota
	keepMember
	// keepSignedOnly keeps an object member reduced to its `signed` member
	// and drops a member of any other JSON type. The specification defines
	// only that `signed` is kept, and Synapse (prune_event_dict in
	// synapse/events/utils.py) handles the other cases this way.
	keepSignedOnly
)

// keepContent returns what redaction does with the content member key of an
// event of eventType. keepsAllContent is checked first.
func keepContent(rules RedactionRules, eventType, key string) contentKeep {
	keep := false
	switch eventType {
	case "m.room.member":
		switch key {
		case "membership":
			keep = true
		case "join_authorised_via_users_server":
			keep = rules >= RedactionV9
		case "third_party_invite":
			if rules >= RedactionV11 {
				return keepSignedOnly
			}
		}
	case "m.room.create":
		keep = key == "creator"
	case "m.room.join_rules":
		keep = key == "join_rule" || (key == "allow" && rules >= RedactionV8)
	case "m.room.power_levels":
		switch key {
		case "ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default":
			keep = true
		case "invite":
			keep = rules >= RedactionV11
		}
	case "m.room.aliases":
		keep = key == "aliases" && rules < RedactionV6
	case "m.room.history_visibility":
		keep = key == "history_visibility"
	case "m.room.redaction":
		keep = key == "redacts" && rules >= RedactionV11
	}
	if keep {
		return keepMember
	}
	return dropMember
}
