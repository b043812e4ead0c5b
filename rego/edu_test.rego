package bordergate.edu_test

import data.bordergate.edu
import data.bordergate.fixtures

decide(changes) := decision if {
	decision := edu.decision with input as object.union(fixtures.edu, changes)
}

common_types := [
	"m.typing",
	"m.receipt",
	"m.presence",
	"m.device_list_update",
	"m.signing_key_update",
	"m.direct_to_device",
]

test_common_types_allowed if {
	every edu_type in common_types {
		decide({"edu": {"edu_type": edu_type}}) == fixtures.allowed
	}
}

test_common_types_allowed_with_deny_unknown_edus if {
	every edu_type in common_types {
		decision := decide({"edu": {"edu_type": edu_type}}) with data.bordergate.config as {"deny_unknown_edus": true}
		decision == fixtures.allowed
	}
}

test_unknown_type_allowed_by_default if {
	decide({"edu": {"edu_type": "org.example.custom"}}) == fixtures.allowed
	decision := decide({"edu": {"edu_type": "org.example.custom"}}) with data.bordergate.config as {"deny_unknown_edus": false}
	decision == fixtures.allowed
}

test_unknown_type_denied_with_deny_unknown_edus if {
	decision := decide({"edu": {"edu_type": "org.example.custom"}}) with data.bordergate.config as {"deny_unknown_edus": true}
	decision == fixtures.denied(["EDU type org.example.custom not allowed"])
}

test_configured_type_allowed_with_deny_unknown_edus if {
	config := {"deny_unknown_edus": true, "allowed_edu_types": ["org.example.custom"]}
	decision := decide({"edu": {"edu_type": "org.example.custom"}}) with data.bordergate.config as config
	decision == fixtures.allowed
}

test_origin_not_on_allow_list_denied if {
	decide({"origin": {"allowlisted": false, "entry": null}}) == fixtures.denied(["origin not on allow-list"])
}

test_origin_expired_denied if {
	decide({"origin": {"entry": {"expires": "2026-01-01T00:00:00Z", "expired": true}}}) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_outbound_to_allow_listed_destination_allowed if {
	decide(fixtures.outbound) == fixtures.allowed
}

test_outbound_to_unknown_destination_denied if {
	changes := object.union(fixtures.outbound, {"destination": {"allowlisted": false, "entry": null}})
	decide(changes) == fixtures.denied(["destination not on allow-list"])
}

test_missing_type_denied if {
	without_type := json.remove(fixtures.edu, ["edu/edu_type"])
	edu.decision == fixtures.denied(["EDU type missing"]) with input as without_type
}

test_denied_origin_denied if {
	decide(fixtures.denied_origin) == fixtures.denied(["origin hs1.evil.example denied by allow-list entry *.evil.example: spam"])
}
