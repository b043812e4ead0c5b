package bordergate.request_test

import data.bordergate.fixtures
import data.bordergate.request

decide(changes) := decision if {
	decision := request.decision with input as object.union(fixtures.request, changes)
}

test_allow_listed_send_allowed if {
	decide({}) == fixtures.allowed
}

test_origin_not_on_allow_list_denied if {
	decide({"origin": {"allowlisted": false, "entry": null}}) == fixtures.denied(["origin not on allow-list"])
}

test_allow_listed_without_entry_denied if {
	decide({"origin": {"entry": null}}) == fixtures.denied(["origin not on allow-list"])
}

test_expired_entry_denied if {
	decide({"origin": {"entry": {"expires": "2026-03-01T11:59:59Z", "expired": true}}}) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_entry_expiring_now_denied if {
	decide({"origin": {"entry": {"expires": fixtures.now, "expired": true}}}) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_expiry_follows_the_flag if {
	decide({"origin": {"entry": {"expires": "2026-03-01T12:00:01Z", "expired": false}}}) == fixtures.allowed
	decide({"origin": {"entry": {"expires": "2026-03-01T12:00:01Z", "expired": true}}}) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_entry_without_expiry_allowed if {
	decide({"origin": {"entry": {"expires": ""}}}) == fixtures.allowed
	decide({"origin": {"entry": {"expires": null}}}) == fixtures.allowed
	without_expires := json.remove(fixtures.request, ["origin/entry/expires"])
	request.decision == fixtures.allowed with input as without_expires
}

test_endpoint_not_permitted_denied if {
	decide({"origin": {"entry": {"endpoints": ["backfill"]}}}) == fixtures.denied(["endpoint send not permitted for hs1.example"])
}

test_endpoint_listed_allowed if {
	decide({"origin": {"entry": {"endpoints": ["backfill", "send"]}}}) == fixtures.allowed
}

test_empty_endpoints_denied if {
	decide({"origin": {"entry": {"endpoints": []}}}) == fixtures.denied(["endpoint send not permitted for hs1.example"])
	decide({"origin": {"entry": {"endpoints": null}}}) == fixtures.denied(["endpoint send not permitted for hs1.example"])
}

test_discovery_endpoints_open_inbound if {
	every endpoint in ["version", "key_server", "well_known"] {
		decide(object.union(fixtures.unknown_origin, {"request": {"endpoint": endpoint}})) == fixtures.allowed
	}
}

test_discovery_endpoint_needs_no_listing if {
	decide({"request": {"endpoint": "key_server"}, "origin": {"entry": {"endpoints": ["send"]}}}) == fixtures.allowed
}

test_key_query_from_unknown_server_denied if {
	changes := object.union(fixtures.unknown_origin, {"request": {"endpoint": "key_query"}})
	decide(changes) == fixtures.denied(["origin not on allow-list", "request not authenticated"])
}

test_key_query_batch_from_allow_listed_server_allowed if {
	decide({"request": {"endpoint": "key_query_batch"}}) == fixtures.allowed
}

test_key_query_needs_listing if {
	changes := {"request": {"endpoint": "key_query"}, "origin": {"entry": {"endpoints": ["send"]}}}
	decide(changes) == fixtures.denied(["endpoint key_query not permitted for hs1.example"])
}

test_unauthenticated_request_denied if {
	decide({"request": {"authenticated": false}}) == fixtures.denied(["request not authenticated"])
}

test_mutual_tls_required_without_certificate_denied if {
	decide({"origin": {"entry": {"require_mtls": true}}}) == fixtures.denied(["mutual TLS required for hs1.example"])
}

test_mutual_tls_unverified_certificate_denied if {
	changes := {
		"origin": {"entry": {"require_mtls": true}},
		"tls": {"client_certificate": true, "verified": false, "matches_origin": true},
	}
	decide(changes) == fixtures.denied(["mutual TLS required for hs1.example"])
}

test_mutual_tls_certificate_of_other_server_denied if {
	changes := {
		"origin": {"entry": {"require_mtls": true}},
		"tls": {"client_certificate": true, "verified": true, "matches_origin": false},
	}
	decide(changes) == fixtures.denied(["mutual TLS required for hs1.example"])
}

test_mutual_tls_verified_allowed if {
	changes := {
		"origin": {"entry": {"require_mtls": true}},
		"tls": {
			"client_certificate": true,
			"verified": true,
			"subject": "CN=hs1.example",
			"dns_names": ["hs1.example"],
			"matches_origin": true,
		},
	}
	decide(changes) == fixtures.allowed
}

test_outbound_to_allow_listed_destination_allowed if {
	decide(fixtures.outbound) == fixtures.allowed
}

test_outbound_ignores_mutual_tls if {
	decide(object.union(fixtures.outbound, {"destination": {"entry": {"require_mtls": true}}})) == fixtures.allowed
}

test_outbound_to_unknown_destination_denied if {
	changes := object.union(fixtures.outbound, {"destination": {"allowlisted": false, "entry": null}})
	decide(changes) == fixtures.denied(["destination not on allow-list"])
}

test_outbound_discovery_to_unknown_destination_denied if {
	changes := object.union(fixtures.outbound, {
		"request": {"endpoint": "key_server"},
		"destination": {"allowlisted": false, "entry": null},
	})
	decide(changes) == fixtures.denied(["destination not on allow-list"])
}

test_outbound_expired_destination_denied if {
	changes := object.union(fixtures.outbound, {"destination": {"entry": {"expires": "2020-01-01T00:00:00Z", "expired": true}}})
	decide(changes) == fixtures.denied(["allow-list entry for hs1.example expired"])
}

test_outbound_endpoint_not_permitted_denied if {
	changes := object.union(fixtures.outbound, {
		"request": {"endpoint": "make_join"},
		"destination": {"entry": {"endpoints": ["send"]}},
	})
	decide(changes) == fixtures.denied(["endpoint make_join not permitted for hs1.example"])
}

test_reasons_sorted if {
	changes := {"request": {"authenticated": false}, "origin": {"entry": {"endpoints": [], "require_mtls": true}}}
	decide(changes) == fixtures.denied([
		"endpoint send not permitted for hs1.example",
		"mutual TLS required for hs1.example",
		"request not authenticated",
	])
}

test_unknown_direction_denied if {
	decide({"direction": "sideways"}).allow == false
	"direction sideways not supported, expected inbound or outbound" in decide({"direction": "sideways"}).reasons
}

test_missing_direction_denied if {
	without_direction := json.remove(fixtures.request, ["direction"])
	decision := request.decision with input as without_direction
	decision.allow == false
	"direction missing" in decision.reasons
}

test_unsupported_version_denied if {
	decide({"version": 2}) == fixtures.denied(["input version 2 not supported, expected 1"])
	without_version := json.remove(fixtures.request, ["version"])
	request.decision == fixtures.denied(["input version missing"]) with input as without_version
}

test_missing_endpoint_denied if {
	without_endpoint := json.remove(fixtures.request, ["request/endpoint"])
	request.decision == fixtures.denied(["endpoint missing"]) with input as without_endpoint
}

test_bad_data_file_setting_denied if {
	decision := decide({}) with data.bordergate.config as {"restricted_rooms": "!room:hs1.example", "deny_unknown_edus": "yes"}
	decision == fixtures.denied([
		"policy data setting deny_unknown_edus must be a boolean",
		"policy data setting restricted_rooms must be an array",
	])
}

no_decision(_) := value if {
	value := "never"
	false
}

test_default_decision_denies if {
	decision := request.decision with data.bordergate.lib.decide as no_decision
	decision == fixtures.denied(["request policy did not produce a decision"])
}

test_missing_authenticated_denied if {
	without_flag := json.remove(fixtures.request, ["request/authenticated"])
	request.decision == fixtures.denied(["request not authenticated"]) with input as without_flag
}

test_denied_origin_denied_with_note if {
	decide(fixtures.denied_origin) == fixtures.denied(["origin hs1.evil.example denied by allow-list entry *.evil.example: spam"])
}

test_denied_origin_without_note if {
	changes := {"origin": {"server_name": "hs1.evil.example", "allowlisted": false, "entry": null, "deny_entry": {"server_name": "hs1.evil.example", "deny": true, "note": ""}}}
	decide(changes) == fixtures.denied(["origin hs1.evil.example denied by allow-list entry hs1.evil.example"])
}

# A deny entry wins even when the input also carries an allow entry, as a
# policy input built by hand may.
test_deny_entry_beats_allow_entry if {
	changes := {"origin": {"deny_entry": fixtures.ban_entry}}
	decide(changes) == fixtures.denied(["origin hs1.example denied by allow-list entry *.evil.example: spam"])
}

test_denied_destination_denied if {
	changes := object.union(fixtures.outbound, {"destination": {"allowlisted": false, "entry": null, "deny_entry": fixtures.ban_entry}})
	decide(changes) == fixtures.denied(["destination hs1.example denied by allow-list entry *.evil.example: spam"])
}
