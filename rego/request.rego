# METADATA
# description: |
#   Request policy. Allows a federation request only between allow-listed
#   servers, on endpoints that the peer's allow-list entry permits, and with a
#   verified client certificate when the entry requires mutual TLS.
package bordergate.request

import data.bordergate.lib

# discovery_endpoints are the endpoints that a server calls to discover another
# server and fetch its signing keys. No allow-list entry needs to list them.
# Inbound, any server may call them, because a server must verify this one's
# keys before its own requests can be checked.
discovery_endpoints := {"version", "key_server", "well_known"}

default decision := {"allow": false, "reasons": ["request policy did not produce a decision"]}

decision := lib.decide(reasons)

endpoint := input.request.endpoint

open_to_all if {
	input.direction == "inbound"
	endpoint in discovery_endpoints
}

reasons contains reason if some reason in lib.base_reasons

# A negated call such as "not is_string(x)" is undefined, not true, when x is
# undefined, so the checks of fields that may be missing negate helper rules.
reasons contains "endpoint missing" if not has_endpoint

has_endpoint if is_string(endpoint)

reasons contains "request not authenticated" if {
	input.direction == "inbound"
	not open_to_all
	not authenticated
}

authenticated if input.request.authenticated == true

reasons contains reason if {
	not open_to_all
	some reason in lib.peer_reasons
}

reasons contains sprintf("endpoint %s not permitted for %s", [endpoint, lib.peer_name]) if {
	lib.peer_entry
	not endpoint in discovery_endpoints
	not lib.permits(object.get(lib.peer_entry, "endpoints", null), endpoint)
}

reasons contains sprintf("mutual TLS required for %s", [lib.peer_name]) if {
	input.direction == "inbound"
	not open_to_all
	lib.peer_entry.require_mtls == true
	not verified_client_certificate
}

verified_client_certificate if {
	input.tls.client_certificate == true
	input.tls.verified == true
	input.tls.matches_origin == true
}
