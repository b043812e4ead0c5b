package bordergate.lib_test

import data.bordergate.fixtures
import data.bordergate.lib

test_permits_listed_item if {
	lib.permits(["send", "backfill"], "send")
}

test_permits_star if {
	lib.permits(["*"], "anything")
}

test_permits_nothing_else if {
	not lib.permits(["backfill"], "send")
	not lib.permits([], "send")
	not lib.permits(null, "send")
	not lib.permits("send", "send")
}

test_expired_flag if {
	lib.expired({"expires": "2026-03-01T11:00:00Z", "expired": true})
}

test_not_expired if {
	not lib.expired({"expires": "2026-03-01T13:00:00Z", "expired": false})
	not lib.expired({"expires": "", "expired": false})
	not lib.expired({"expired": null})
	not lib.expired({"expired": "true"})
	not lib.expired({})
}

test_expires_alone_not_expired if {
	# The gateway judges expiry and sets the flag; expires is for reading.
	not lib.expired({"expires": "2026-03-01T11:00:00Z"}) with input as {"now": fixtures.now}
}

test_config_list_default if {
	lib.config_list("restricted_rooms") == []
	lib.config_list("restricted_rooms") == ["!a:hs1.example"] with data.bordergate.config as {"restricted_rooms": ["!a:hs1.example"]}
}

test_config_flag if {
	not lib.config_flag("deny_unknown_edus")
	lib.config_flag("deny_unknown_edus") with data.bordergate.config as {"deny_unknown_edus": true}
}

test_config_not_object_ignored if {
	lib.config == {} with data.bordergate.config as ["not", "an", "object"]
}

test_decide_sorts_reasons if {
	lib.decide({"b", "a"}) == {"allow": false, "reasons": ["a", "b"]}
	lib.decide(set()) == {"allow": true, "reasons": []}
}

test_peer_by_direction if {
	lib.peer_name == "hs1.example" with input as fixtures.request
	lib.peer_role == "origin" with input as fixtures.request
	outbound := object.union(fixtures.request, fixtures.outbound)
	lib.peer_name == "hs1.example" with input as outbound
	lib.peer_role == "destination" with input as outbound
	lib.peer_entry == fixtures.hs1_entry with input as outbound
}
