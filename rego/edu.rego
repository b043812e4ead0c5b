# METADATA
# description: |
#   EDU policy. Allows EDUs exchanged with allow-listed servers. Denying an EDU
#   withholds the whole transaction that carries it, and senders do not send
#   EDUs again, so this policy never denies the common EDU types and denies
#   other types only when the data file sets deny_unknown_edus.
package bordergate.edu

import data.bordergate.lib

# common_edu_types are the EDU types of the Matrix server-server API.
common_edu_types := {
	"m.typing",
	"m.receipt",
	"m.presence",
	"m.device_list_update",
	"m.signing_key_update",
	"m.direct_to_device",
}

default decision := {"allow": false, "reasons": ["EDU policy did not produce a decision"]}

decision := lib.decide(reasons)

edu_type := input.edu.edu_type

reasons contains reason if some reason in lib.base_reasons

reasons contains "EDU type missing" if not has_edu_type

has_edu_type if is_string(edu_type)

reasons contains reason if some reason in lib.peer_reasons

reasons contains sprintf("EDU type %s not allowed", [edu_type]) if {
	lib.config_flag("deny_unknown_edus")
	not known_edu_type
}

known_edu_type if edu_type in common_edu_types

known_edu_type if edu_type in lib.config_list("allowed_edu_types")
