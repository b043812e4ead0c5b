package bordergate.pdu_test

import data.bordergate.fixtures
import data.bordergate.pdu

decide(changes) := decision if {
	decision := pdu.decision with input as object.union(fixtures.pdu, changes)
}

# restricted is a data file with one restricted room and one extra event type.
restricted := {
	"restricted_rooms": ["!restricted:hs1.example"],
	"allowed_event_types": ["com.example.allowed"],
}

# backfill changes the PDU to one of hs3.example that hs1.example returned.
backfill := {
	"request": {"endpoint": "backfill"},
	"pdu": {"sender": "@carol:hs3.example", "sender_server": "hs3.example"},
	"sender_entry": fixtures.hs3_entry,
}

test_message_from_allow_listed_server_allowed if {
	decide({}) == fixtures.allowed
}

test_type_denied_by_data_file if {
	decision := decide({"pdu": {"type": "com.example.forbidden"}}) with data.bordergate.config as {"denied_event_types": ["com.example.forbidden"]}
	decision == fixtures.denied(["event type com.example.forbidden denied"])
}

test_no_type_denied_without_data_file if {
	decide({"pdu": {"type": "com.example.forbidden"}}) == fixtures.allowed
}

test_sender_server_not_on_allow_list_denied if {
	changes := {"pdu": {"sender": "@mallory:evil.example", "sender_server": "evil.example"}, "sender_entry": null}
	decide(changes) == object.union(fixtures.denied(["sender server evil.example not on allow-list"]), {"remove": true})
}

test_denied_content_not_removed if {
	not decide({"pdu": {"type": "com.example.forbidden"}}).remove with data.bordergate.config as {"denied_event_types": ["com.example.forbidden"]}
}

test_sender_server_expired_denied if {
	changes := object.union(backfill, {"sender_entry": {"expires": "2026-01-01T00:00:00Z", "expired": true}})
	decide(changes) == fixtures.denied(["allow-list entry for hs3.example expired"])
}

test_local_sender_allowed if {
	changes := {"pdu": {"sender": "@bob:hs2.example", "sender_server": "hs2.example"}, "sender_entry": null, "sender_local": true}
	decide(changes) == fixtures.allowed
}

test_event_of_third_server_allowed if {
	decide(backfill) == fixtures.allowed
}

test_origin_not_on_allow_list_denied if {
	decide({"origin": {"allowlisted": false, "entry": null}}) == fixtures.denied(["origin not on allow-list"])
}

test_origin_expired_denied if {
	changes := object.union(backfill, {"origin": {"entry": {"expires": "2026-01-01T00:00:00Z", "expired": true}}})
	decide(changes) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_outbound_local_event_allowed if {
	changes := object.union(fixtures.outbound, {
		"pdu": {"sender": "@bob:hs2.example", "sender_server": "hs2.example"},
		"sender_entry": null,
		"sender_local": true,
	})
	decide(changes) == fixtures.allowed
}

test_outbound_to_unknown_destination_denied if {
	changes := object.union(fixtures.outbound, {
		"destination": {"allowlisted": false, "entry": null},
		"pdu": {"sender": "@bob:hs2.example", "sender_server": "hs2.example"},
		"sender_entry": null,
		"sender_local": true,
	})
	decide(changes) == fixtures.denied(["destination not on allow-list"])
}

test_unknown_type_in_restricted_room_denied if {
	changes := {"room": {"room_id": "!restricted:hs1.example"}, "pdu": {"type": "org.example.custom"}}
	decision := decide(changes) with data.bordergate.config as restricted
	decision == fixtures.denied(["event type org.example.custom not allowed in restricted room !restricted:hs1.example"])
}

test_spec_types_in_restricted_room_allowed if {
	every event_type in ["m.room.message", "m.room.member", "m.room.encrypted", "m.reaction", "m.room.redaction"] {
		changes := {"room": {"room_id": "!restricted:hs1.example"}, "pdu": {"type": event_type}}
		decision := decide(changes) with data.bordergate.config as restricted
		decision == fixtures.allowed
	}
}

test_configured_type_in_restricted_room_allowed if {
	changes := {"room": {"room_id": "!restricted:hs1.example"}, "pdu": {"type": "com.example.allowed"}}
	decision := decide(changes) with data.bordergate.config as restricted
	decision == fixtures.allowed
}

test_unknown_type_in_other_room_allowed if {
	decision := decide({"pdu": {"type": "org.example.custom"}}) with data.bordergate.config as restricted
	decision == fixtures.allowed
}

test_every_room_restricted_with_star if {
	decision := decide({"pdu": {"type": "org.example.custom"}}) with data.bordergate.config as {"restricted_rooms": ["*"]}
	decision == fixtures.denied(["event type org.example.custom not allowed in restricted room !room:hs1.example"])
}

test_type_outside_sender_event_types_denied if {
	decide({"sender_entry": {"event_types": ["m.room.member"]}}) == fixtures.denied(["event type m.room.message not permitted for hs1.example"])
}

test_type_inside_sender_event_types_allowed if {
	decide({"sender_entry": {"event_types": ["m.room.member", "m.room.message"]}}) == fixtures.allowed
	decide({"sender_entry": {"event_types": ["*"]}}) == fixtures.allowed
}

test_empty_event_types_denied if {
	decide({"sender_entry": {"event_types": []}}) == fixtures.denied(["event type m.room.message not permitted for hs1.example"])
}

test_type_outside_peer_event_types_denied if {
	changes := object.union(backfill, {"origin": {"entry": {"event_types": ["m.room.member"]}}})
	decide(changes) == fixtures.denied(["event type m.room.message not permitted for hs1.example"])
}

test_outbound_type_outside_destination_event_types_denied if {
	changes := object.union(fixtures.outbound, {
		"destination": {"entry": {"event_types": ["m.room.member"]}},
		"pdu": {"sender": "@bob:hs2.example", "sender_server": "hs2.example"},
		"sender_entry": null,
		"sender_local": true,
	})
	decide(changes) == fixtures.denied(["event type m.room.message not permitted for hs1.example"])
}

test_failed_checks_denied if {
	decide({"verified": {"format": false}}) == fixtures.denied(["event format check failed"])
	decide({"verified": {"signatures": false}}) == fixtures.denied(["event signatures check failed"])
	decide({"verified": {"event_id": false}}) == fixtures.denied(["event event_id check failed"])
}

test_missing_checks_denied if {
	without_checks := json.remove(fixtures.pdu, ["verified"])
	pdu.decision == fixtures.denied([
		"event event_id check failed",
		"event format check failed",
		"event signatures check failed",
	]) with input as without_checks
}

test_redacted_for_hash_allowed if {
	changes := {"verified": {"content_hash": false, "redacted_for_hash": true}, "pdu": {"content": {}}}
	decide(changes) == fixtures.allowed
}

test_missing_type_denied if {
	without_type := json.remove(fixtures.pdu, ["pdu/type"])
	pdu.decision == fixtures.denied(["event type missing"]) with input as without_type
}

test_template_needs_only_format if {
	decide({"verified": {"format": true, "signatures": false, "content_hash": false, "event_id": false, "template": true}}) == fixtures.allowed
}

test_template_needs_format if {
	decide({"verified": {"format": false, "template": true}}) == fixtures.denied(["event format check failed"])
}

test_unsigned_event_denied if {
	decide({"verified": {"signatures": false}}) == fixtures.denied(["event signatures check failed"])
}

test_denied_origin_denied if {
	decide(fixtures.denied_origin) == fixtures.denied(["origin hs1.evil.example denied by allow-list entry *.evil.example: spam"])
}

test_denied_sender_server_removed if {
	changes := object.union(backfill, {"pdu": {"sender_server": "hs3.evil.example"}, "sender_entry": null, "sender_deny_entry": fixtures.ban_entry})
	decision := decide(changes)
	decision == object.union(fixtures.denied(["sender server hs3.evil.example denied by allow-list entry *.evil.example: spam"]), {"remove": true})
}
