# METADATA
# description: |
#   PDU policy. Allows a verified event when its sender's server is local or
#   allow-listed, its type is not denied by the data file or by the event_types
#   of the allow-list entries involved, and, in a restricted room, its type is
#   a known one.
package bordergate.pdu

import data.bordergate.lib

# spec_event_types are the room event types that the Matrix specification
# defines, as listed by the event schemas of matrix-org/matrix-spec in 2026,
# plus m.room.aliases, which room versions 1 to 5 still give a meaning.
spec_event_types := {
	"m.call.answer",
	"m.call.candidates",
	"m.call.hangup",
	"m.call.invite",
	"m.call.negotiate",
	"m.call.reject",
	"m.call.sdp_stream_metadata_changed",
	"m.call.select_answer",
	"m.key.verification.accept",
	"m.key.verification.cancel",
	"m.key.verification.done",
	"m.key.verification.key",
	"m.key.verification.mac",
	"m.key.verification.ready",
	"m.key.verification.start",
	"m.policy.rule.room",
	"m.policy.rule.server",
	"m.policy.rule.user",
	"m.reaction",
	"m.room.aliases",
	"m.room.avatar",
	"m.room.canonical_alias",
	"m.room.create",
	"m.room.encrypted",
	"m.room.encryption",
	"m.room.guest_access",
	"m.room.history_visibility",
	"m.room.image_pack",
	"m.room.join_rules",
	"m.room.member",
	"m.room.message",
	"m.room.name",
	"m.room.pinned_events",
	"m.room.policy",
	"m.room.power_levels",
	"m.room.redaction",
	"m.room.server_acl",
	"m.room.third_party_invite",
	"m.room.tombstone",
	"m.room.topic",
	"m.space.child",
	"m.space.parent",
	"m.sticker",
}

# required_checks are the verification results that must all be true. A false
# content_hash is allowed: the gateway has then redacted the content, as the
# Matrix specification requires of homeservers.
required_checks := ["format", "signatures", "event_id"]

default decision := {"allow": false, "reasons": ["PDU policy did not produce a decision"]}

decision := lib.decide(reasons) if not remove

# A PDU denied because of who sent it, rather than what it says, is removed
# from responses instead of being passed on redacted: see remove.
decision := object.union(lib.decide(reasons), {"remove": true}) if remove

# remove is true when the sender's server is neither local nor allow-listed.
# In a response (backfill, state, ...) the gateway then drops the event; any
# other denied event is passed on in its redacted form, which keeps the room's
# history whole.
remove if {
	not sender_local
	not sender_entry
}

event_type := input.pdu.type

sender_server := input.pdu.sender_server

room_id := input.room.room_id

sender_local if input.sender_local == true

sender_entry := input.sender_entry if is_object(input.sender_entry)

reasons contains reason if some reason in lib.base_reasons

reasons contains "event type missing" if not has_event_type

has_event_type if is_string(event_type)

reasons contains sprintf("event %s check failed", [check]) if {
	some check in checks_for_event
	object.get(verified, check, false) != true
}

# verified is the verification record of the event, empty when the input
# lacks one, so that every required check then fails.
default verified := {}

verified := input.verified if is_object(input.verified)

# checks_for_event are the required checks, except for a membership template,
# which is not yet hashed or signed: only its format applies.
checks_for_event := ["format"] if input.verified.template == true

checks_for_event := required_checks if not input.verified.template

reasons contains reason if some reason in lib.peer_reasons

sender_deny := input.sender_deny_entry if is_object(input.sender_deny_entry)

reasons contains lib.deny_reason("sender server", sender_server, sender_deny) if {
	not sender_local
	sender_deny
}

reasons contains sprintf("sender server %s not on allow-list", [sender_server]) if {
	not sender_local
	not sender_entry
	not sender_deny
}

reasons contains sprintf("allow-list entry for %s expired", [sender_server]) if {
	not sender_local
	lib.expired(sender_entry)
}

reasons contains sprintf("event type %s denied", [event_type]) if {
	event_type in lib.config_list("denied_event_types")
}

reasons contains sprintf("event type %s not allowed in restricted room %s", [event_type, room_id]) if {
	restricted_room
	not known_event_type
}

restricted_room if room_id in lib.config_list("restricted_rooms")

restricted_room if "*" in lib.config_list("restricted_rooms")

known_event_type if event_type in spec_event_types

known_event_type if event_type in lib.config_list("allowed_event_types")

# type_limits are the allow-list entries whose event_types limit this event:
# the peer's entry and the sender's server's entry. An entry without
# event_types (or with null) does not limit event types.
type_limits contains [lib.peer_name, lib.peer_entry.event_types] if {
	lib.peer_entry.event_types != null
}

type_limits contains [sender_server, sender_entry.event_types] if {
	sender_entry.event_types != null
}

reasons contains sprintf("event type %s not permitted for %s", [event_type, name]) if {
	some [name, permitted] in type_limits
	not lib.permits(permitted, event_type)
}
