package events

import (
	"encoding/base64"
	"errors"
	"strconv"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/servername"
)

// parseFields checks the members of p.Event that the room version defines
// and fills the extracted fields of p. The checks run in a fixed order, so
// the first problem found is the one reported.
func (p *PDU) parseFields(opts ParseOptions) error {
	if err := p.parseEventID(); err != nil {
		return err
	}
	if err := p.parseType(); err != nil {
		return err
	}
	if err := p.parseRoomID(); err != nil {
		return err
	}
	if err := p.parseSender(); err != nil {
		return err
	}
	if err := p.parseStateKey(); err != nil {
		return err
	}

	if err := p.parseTimestampAndDepth(); err != nil {
		return err
	}
	if err := p.parseContent(); err != nil {
		return err
	}
	if err := p.parseHashes(); err != nil {
		return err
	}
	if err := p.parseSignatures(); err != nil {
		return err
	}
	if err := p.parseEdges(opts); err != nil {
		return err
	}

	if err := p.parseUnsigned(); err != nil {
		return err
	}
	if err := p.parseRedacts(); err != nil {
		return err
	}
	return p.parseMembership()
}

func (p *PDU) parseEventID() error {
	rv := p.RoomVersion
	val, present := p.Event.Get("event_id")
	if rv.EventIDFormat != EventIDServerChosen {
		if present {
			return fieldErr("event_id", "must be absent in room version %s, where the event ID is derived from the event", rv.ID)
		}
		return nil
	}
	id, err := idMember("event_id", val, present)
	if err != nil {
		return err
	}
	if _, ok := serverOfSigilID(id, '$'); !ok {
		return fieldErr("event_id", "%q is not an event ID of the form $opaque:server_name", id)
	}
	p.EventID = id
	return nil
}

func (p *PDU) parseType() error {
	val, present := p.Event.Get("type")
	typ, err := idMember("type", val, present)
	if err != nil {
		return err
	}
	p.Type = typ
	return nil
}

func (p *PDU) parseRoomID() error {
	rv := p.RoomVersion
	val, present := p.Event.Get("room_id")
	if rv.RoomIDFromCreate && p.Type == "m.room.create" {
		if present {
			return fieldErr("room_id", "must be absent from m.room.create in room version %s, where the room ID is derived from the create event", rv.ID)
		}
		return nil
	}
	id, err := idMember("room_id", val, present)
	if err != nil {
		return err
	}
	if rv.RoomIDFromCreate {
		if !validHashID(id, '!', base64.RawURLEncoding) {
			return fieldErr("room_id", "%q is not a room ID of room version %s: '!' and 43 characters of URL-safe base64", id, rv.ID)
		}
	} else if _, ok := serverOfSigilID(id, '!'); !ok {
		return fieldErr("room_id", "%q is not a room ID of the form !opaque:server_name", id)
	}
	p.RoomID = id
	return nil
}

func (p *PDU) parseSender() error {
	val, present := p.Event.Get("sender")
	sender, err := idMember("sender", val, present)
	if err != nil {
		return err
	}
	_, server, err := servername.SplitUserID(sender)
	if err != nil {
		return fieldErr("sender", "%q is not a user ID of the form @localpart:server_name", sender)
	}
	p.Sender, p.SenderServer = sender, server
	return nil
}

func (p *PDU) parseStateKey() error {
	val, present := p.Event.Get("state_key")
	if !present {
		return nil
	}
	key, err := idMember("state_key", val, true)
	if err != nil {
		return err
	}
	p.StateKey = &key
	return nil
}

func (p *PDU) parseTimestampAndDepth() error {
	ts, err := integerMember(p.Event, "origin_server_ts")
	if err != nil {
		return err
	}
	depth, err := integerMember(p.Event, "depth")
	if err != nil {
		return err
	}
	if max := p.RoomVersion.MaxDepth; depth < 0 || depth > max {
		return fieldErr("depth", "%d is out of range 0 to %d of room version %s", depth, max, p.RoomVersion.ID)
	}
	p.OriginServerTS, p.Depth = ts, depth
	return nil
}

func (p *PDU) parseContent() error {
	content, err := objectMember(p.Event, "content")
	if err != nil {
		return err
	}
	p.Content = content
	return nil
}

func (p *PDU) parseHashes() error {
	hashes, err := objectMember(p.Event, "hashes")
	if err != nil {
		return err
	}
	val, present := hashes.Get("sha256")
	_, err = stringMember("hashes.sha256", val, present)
	return err
}

// parseSignatures checks that `signatures` maps server names to objects
// that map key IDs to strings.
func (p *PDU) parseSignatures() error {
	signatures, err := objectMember(p.Event, "signatures")
	if err != nil {
		return err
	}
	for _, server := range signatures.Members() {
		if server.Value.Kind() != canonicaljson.Object {
			return fieldErr("signatures."+server.Key, "must be an object, got a JSON %s", server.Value.Kind())
		}
		for _, sig := range server.Value.Members() {
			if sig.Value.Kind() != canonicaljson.String {
				return fieldErr("signatures."+server.Key+"."+sig.Key, "must be a string, got a JSON %s", sig.Value.Kind())
			}
		}
	}
	return nil
}

func (p *PDU) parseEdges(opts ParseOptions) error {
	var err error
	p.PrevEvents, err = p.eventRefs("prev_events", MaxPrevEvents, opts.RelaxEdgeLimits)
	if err != nil {
		return err
	}
	p.AuthEvents, err = p.eventRefs("auth_events", MaxAuthEvents, opts.RelaxEdgeLimits)
	return err
}

// eventRefs returns the event IDs listed in the array member key, which
// holds event ID strings or, in room versions 1 and 2,
// `[event_id, {"sha256": hash}]` pairs.
func (p *PDU) eventRefs(key string, limit int, relax bool) ([]string, error) {
	val, present := p.Event.Get(key)
	if !present {
		return nil, fieldErr(key, "missing")
	}
	if val.Kind() != canonicaljson.Array {
		return nil, fieldErr(key, "must be an array, got a JSON %s", val.Kind())
	}
	items := val.Items()
	if !relax && len(items) > limit {
		return nil, fieldErr(key, "has %d entries, more than the limit of %d", len(items), limit)
	}
	ids := make([]string, len(items))
	for i, item := range items {
		id, err := p.eventRef(key, i, item)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// eventRef returns the event ID of entry i of the array member key. The
// field path for an error is built only when there is one, because this
// runs for every reference of every event.
func (p *PDU) eventRef(key string, i int, item canonicaljson.Value) (string, error) {
	rv := p.RoomVersion
	field := func(suffix string) string { return key + "[" + strconv.Itoa(i) + "]" + suffix }
	idSuffix := ""
	if rv.EventRefPairs {
		pair := item.Items()
		if item.Kind() != canonicaljson.Array || len(pair) != 2 {
			return "", fieldErr(field(""), "must be an [event_id, hashes] pair in room version %s", rv.ID)
		}
		if pair[1].Kind() != canonicaljson.Object {
			return "", fieldErr(field("[1]"), "must be an object, got a JSON %s", pair[1].Kind())
		}
		if hash, ok := pair[1].Get("sha256"); ok && hash.Kind() != canonicaljson.String {
			return "", fieldErr(field("[1].sha256"), "must be a string, got a JSON %s", hash.Kind())
		}
		idSuffix = "[0]"
		item = pair[0]
	}
	id, ok := item.Str()
	if !ok {
		return "", fieldErr(field(idSuffix), "must be an event ID string, got a JSON %s", item.Kind())
	}
	if !validEventRef(id, rv) {
		return "", fieldErr(field(idSuffix), "%q is not an event ID of room version %s", id, rv.ID)
	}
	return id, nil
}

func validEventRef(id string, rv *RoomVersion) bool {
	switch rv.EventIDFormat {
	case EventIDServerChosen:
		_, ok := serverOfSigilID(id, '$')
		return ok && len(id) <= MaxIDSize
	case EventIDStdBase64:
		return validHashID(id, '$', base64.RawStdEncoding)
	default:
		return validHashID(id, '$', base64.RawURLEncoding)
	}
}

func (p *PDU) parseUnsigned() error {
	val, present := p.Event.Get("unsigned")
	if present && val.Kind() != canonicaljson.Object {
		return fieldErr("unsigned", "must be an object, got a JSON %s", val.Kind())
	}
	return nil
}

// parseRedacts reads the target of an m.room.redaction from where the
// room version puts it. The member is optional here: auth rules, not the
// event format, decide what a redaction without a target means.
func (p *PDU) parseRedacts() error {
	if p.Type != "m.room.redaction" {
		return nil
	}
	source, field := p.Event, "redacts"
	if p.RoomVersion.RedactsInContent {
		source, field = p.Content, "content.redacts"
	}
	val, present := source.Get("redacts")
	if !present {
		return nil
	}
	target, ok := val.Str()
	if !ok {
		return fieldErr(field, "must be an event ID string, got a JSON %s", val.Kind())
	}
	p.Redacts = target
	return nil
}

// parseMembership checks the content members of m.room.member that decide
// which servers must sign the event.
func (p *PDU) parseMembership() error {
	if p.Type != "m.room.member" {
		return nil
	}
	val, present := p.Content.Get("membership")
	membership, err := stringMember("content.membership", val, present)
	if err != nil {
		return err
	}
	if membership != "join" || !p.RoomVersion.RestrictedJoins {
		return nil
	}
	const field = "content.join_authorised_via_users_server"
	val, present = p.Content.Get("join_authorised_via_users_server")
	if !present {
		return nil
	}
	user, ok := val.Str()
	if !ok {
		return fieldErr(field, "must be a user ID string, got a JSON %s", val.Kind())
	}
	if err := servername.ValidUserID(user); err != nil {
		return fieldErr(field, "%q is not a user ID of the form @localpart:server_name", user)
	}
	return nil
}

// stringMember checks that a member is present and is a string, and
// returns the string.
func stringMember(field string, val canonicaljson.Value, present bool) (string, error) {
	if !present {
		return "", fieldErr(field, "missing")
	}
	s, ok := val.Str()
	if !ok {
		return "", fieldErr(field, "must be a string, got a JSON %s", val.Kind())
	}
	return s, nil
}

// idMember is stringMember for the members whose size is limited to
// MaxIDSize bytes.
func idMember(field string, val canonicaljson.Value, present bool) (string, error) {
	s, err := stringMember(field, val, present)
	if err != nil {
		return "", err
	}
	if len(s) > MaxIDSize {
		return "", fieldErr(field, "is %d bytes, more than the limit of %d", len(s), MaxIDSize)
	}
	return s, nil
}

func objectMember(v canonicaljson.Value, key string) (canonicaljson.Value, error) {
	val, present := v.Get(key)
	if !present {
		return canonicaljson.Value{}, fieldErr(key, "missing")
	}
	if val.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fieldErr(key, "must be an object, got a JSON %s", val.Kind())
	}
	return val, nil
}

// integerMember returns the member key as a 64-bit integer. It accepts plain
// integers outside the canonical JSON range, which room versions 1 to 5
// allow, because checkStrictNumbers rejects them for later versions.
func integerMember(v canonicaljson.Value, key string) (int64, error) {
	val, present := v.Get(key)
	if !present {
		return 0, fieldErr(key, "missing")
	}
	if val.Kind() != canonicaljson.Number {
		return 0, fieldErr(key, "must be an integer, got a JSON %s", val.Kind())
	}
	if n, ok := val.Int(); ok {
		return n, nil
	}
	n, err := strconv.ParseInt(val.NumberText(), 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fieldErr(key, "%s is out of the range of a 64-bit integer", val.NumberText())
	}
	if err != nil {
		return 0, fieldErr(key, "%s is not an integer", val.NumberText())
	}
	return n, nil
}

// checkStrictNumbers rejects a number that is not a canonical JSON integer
// and names where it is.
func checkStrictNumbers(v canonicaljson.Value, rv *RoomVersion) error {
	if v.CheckStrictNumbers() == nil {
		return nil
	}
	path, text := findLenientNumber(v, "")
	return fieldErr(path, "number %s is not a canonical JSON integer (no fraction, exponent or -0, at most 2^53-1 in magnitude), which room version %s requires", text, rv.ID)
}

// findLenientNumber returns the path and text of the first number in v
// that is not a canonical integer.
func findLenientNumber(v canonicaljson.Value, path string) (string, string) {
	switch v.Kind() {
	case canonicaljson.Number:
		if _, ok := v.Int(); !ok {
			return path, v.NumberText()
		}
	case canonicaljson.Array:
		for i, item := range v.Items() {
			if p, text := findLenientNumber(item, path+"["+strconv.Itoa(i)+"]"); text != "" {
				return p, text
			}
		}
	case canonicaljson.Object:
		for _, m := range v.Members() {
			child := m.Key
			if path != "" {
				child = path + "." + m.Key
			}
			if p, text := findLenientNumber(m.Value, child); text != "" {
				return p, text
			}
		}
	}
	return "", ""
}
