# METADATA
# description: |
#   Inputs shared by the Rego unit tests: an allowed inbound /send request
#   from hs1.example to hs2.example, and a PDU and an EDU of that request.
package bordergate.fixtures

now := "2026-03-01T12:00:00Z"

hs1_entry := {
	"server_name": "hs1.example",
	"administration": "Ministry One",
	"pinned_keys": {"ed25519:a": "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ"},
	"revoked_keys": ["ed25519:old"],
	"address": "",
	"require_mtls": false,
	"endpoints": ["*"],
	"event_types": null,
	"expires": "2027-12-31T00:00:00Z",
	"expired": false,
	"labels": {"classification": "restricted"},
}

hs3_entry := {
	"server_name": "hs3.example",
	"administration": "Agency Three",
	"pinned_keys": {},
	"revoked_keys": [],
	"address": "",
	"require_mtls": false,
	"endpoints": ["send", "backfill"],
	"event_types": null,
	"expires": "",
	"expired": false,
	"labels": {},
}

request := {
	"version": 1,
	"kind": "request",
	"direction": "inbound",
	"request": {
		"method": "PUT",
		"path": "/_matrix/federation/v1/send/1700000000000",
		"query": "",
		"endpoint": "send",
		"path_params": {"txn_id": "1700000000000"},
		"authenticated": true,
		"body_size": 1843,
	},
	"origin": {
		"server_name": "hs1.example",
		"key_id": "ed25519:a",
		"key_source": "pinned",
		"allowlisted": true,
		"entry": hs1_entry,
	},
	"destination": {"server_name": "hs2.example", "allowlisted": false, "entry": null},
	"tls": {
		"client_certificate": false,
		"verified": false,
		"subject": "",
		"dns_names": null,
		"matches_origin": false,
	},
	"now": now,
}

# unknown_origin changes the request to one from a server without an
# allow-list entry and without a signature.
unknown_origin := {
	"request": {"authenticated": false},
	"origin": {"server_name": "stranger.example", "key_id": "", "key_source": "", "allowlisted": false, "entry": null},
}

# outbound changes the request to one from the local homeserver hs2.example
# to hs1.example.
outbound := {
	"direction": "outbound",
	"origin": {"server_name": "hs2.example", "key_id": "ed25519:local", "key_source": "", "allowlisted": false, "entry": null},
	"destination": {"server_name": "hs1.example", "allowlisted": true, "entry": hs1_entry},
}

transaction := {"txn_id": "1700000000000", "pdu_count": 1, "edu_count": 1}

pdu := object.union(request, {
	"kind": "pdu",
	"transaction": transaction,
	"room": {"room_id": "!room:hs1.example", "version": "10", "version_source": "stored"},
	"pdu": {
		"event_id": "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
		"type": "m.room.message",
		"state_key": null,
		"sender": "@alice:hs1.example",
		"sender_server": "hs1.example",
		"origin_server_ts": 1700000000000,
		"content": {"msgtype": "m.text", "body": "hello"},
		"redacts": "",
		"depth": 12,
		"prev_events": ["$prev"],
		"auth_events": ["$create", "$power", "$member"],
	},
	"verified": {
		"format": true,
		"signatures": true,
		"content_hash": true,
		"event_id": true,
		"signed_by": ["hs1.example"],
		"redacted_for_hash": false,
	},
	"sender_entry": hs1_entry,
	"sender_local": false,
})

edu := object.union(request, {
	"kind": "edu",
	"transaction": transaction,
	"edu": {
		"edu_type": "m.typing",
		"content": {"room_id": "!room:hs1.example", "user_id": "@alice:hs1.example", "typing": true},
	},
	"room_ids": ["!room:hs1.example"],
})

# allowed is the decision object of an allowed item.
allowed := {"allow": true, "reasons": []}

# denied returns the decision object of an item denied for reasons.
denied(reasons) := {"allow": false, "reasons": reasons}

# ban_entry is a deny entry with a note, as an imported moderation list
# gives.
ban_entry := {
	"server_name": "*.evil.example",
	"deny": true,
	"note": "spam",
	"source": "import:bans",
}

# denied_origin is an origin that a deny entry refuses: the gateway then
# gives no allow entry, whatever allow entry would match.
denied_origin := {"origin": {
	"server_name": "hs1.evil.example",
	"allowlisted": false,
	"entry": null,
	"deny_entry": ban_entry,
}}
