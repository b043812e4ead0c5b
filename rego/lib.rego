# METADATA
# description: Helpers shared by the request, PDU and EDU policies.
package bordergate.lib

# config is the policy data file (data.bordergate.config), or an empty object
# when the gateway runs without one.
default config := {}

config := data.bordergate.config if is_object(data.bordergate.config)

# list_settings and flag_settings are the data file settings that the default
# policy reads.
list_settings := {"denied_event_types", "allowed_event_types", "restricted_rooms", "allowed_edu_types"}

flag_settings := {"deny_unknown_edus"}

# config_errors are reasons to deny every item because a setting of the data
# file has the wrong type. Reading such a setting as empty would silently
# change what the policy allows.
config_errors contains sprintf("policy data setting %s must be an array", [name]) if {
	some name in list_settings
	value := config[name]
	not is_array(value)
}

config_errors contains sprintf("policy data setting %s must be a boolean", [name]) if {
	some name in flag_settings
	value := config[name]
	not is_boolean(value)
}

# config_list returns the array setting name, or an empty array when the data
# file does not set it.
config_list(name) := value if {
	value := object.get(config, name, [])
	is_array(value)
} else := []

# config_flag is true when the boolean setting name is true.
config_flag(name) if object.get(config, name, false) == true

# decide builds the decision object: allowed exactly when there is no reason
# to deny, with the reasons sorted so that records compare.
decide(reasons) := {"allow": count(reasons) == 0, "reasons": sort(reasons)}

# base_reasons are the reasons to deny that every kind of decision shares: an
# input document this policy was not written for, or a bad data file.
base_reasons contains sprintf("input version %v not supported, expected 1", [input.version]) if {
	input.version != 1
}

base_reasons contains "input version missing" if not input.version

base_reasons contains sprintf("direction %v not supported, expected inbound or outbound", [input.direction]) if {
	not input.direction in {"inbound", "outbound"}
}

base_reasons contains "direction missing" if not input.direction

base_reasons contains reason if some reason in config_errors

# peer is the remote server of the item: the origin of an inbound item, the
# destination of an outbound one.
peer := input.origin if input.direction == "inbound"

peer := input.destination if input.direction == "outbound"

# peer_role names the peer in reasons.
peer_role := "origin" if input.direction == "inbound"

peer_role := "destination" if input.direction == "outbound"

peer_name := peer.server_name

# peer_entry is the allow-list entry of the peer, undefined when the peer is not
# on the allow-list.
peer_entry := peer.entry if {
	peer.allowlisted == true
	is_object(peer.entry)
}

# peer_deny is the deny entry that matches the peer, undefined when none does.
# A deny entry wins over every allow entry: the gateway then gives no entry.
peer_deny := peer.deny_entry if is_object(peer.deny_entry)

# deny_reason names the server that a deny entry refuses, the entry, and the
# entry's note when it has one.
deny_reason(role, name, entry) := sprintf("%s %s denied by allow-list entry %s: %s", [role, name, entry.server_name, entry.note]) if {
	object.get(entry, "note", "") != ""
}

deny_reason(role, name, entry) := sprintf("%s %s denied by allow-list entry %s", [role, name, entry.server_name]) if {
	object.get(entry, "note", "") == ""
}

# peer_reasons are the reasons to deny an item because of the peer's
# allow-list entries: a deny entry, no entry, or an expired one.
peer_reasons contains deny_reason(peer_role, peer_name, peer_deny) if peer_deny

peer_reasons contains sprintf("%s not on allow-list", [peer_role]) if {
	not peer_entry
	not peer_deny
}

peer_reasons contains sprintf("allow-list entry for %s expired", [peer_name]) if expired(peer_entry)

# permits is true when list is an array that contains item or "*".
permits(list, item) if {
	is_array(list)
	item in list
}

permits(list, _) if {
	is_array(list)
	"*" in list
}

# expired is true when the gateway judged the entry expired at the decision's
# now. Reading the expired flag instead of comparing expires with input.now
# keeps every decision a function of the entries, which lets the engine reuse
# decisions: a rule that reads input.now makes each decision unique.
expired(entry) if entry.expired == true
