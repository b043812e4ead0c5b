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

test_expired_before_now if {
	lib.expired({"expires": "2026-03-01T11:00:00Z"}) with input as {"now": fixtures.now}
	lib.expired({"expires": fixtures.now}) with input as {"now": fixtures.now}
}

test_not_expired if {
	not lib.expired({"expires": "2026-03-01T13:00:00Z"}) with input as {"now": fixtures.now}
	not lib.expired({"expires": ""}) with input as {"now": fixtures.now}
	not lib.expired({"expires": null}) with input as {"now": fixtures.now}
	not lib.expired({}) with input as {"now": fixtures.now}
}

test_expired_without_now if {
	lib.expired({"expires": "2026-03-01T13:00:00Z"}) with input as {}
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
