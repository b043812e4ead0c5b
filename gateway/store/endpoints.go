package store

import "slices"

// EndpointWildcard in an entry's endpoints permits every endpoint.
const EndpointWildcard = "*"

// KnownEndpoints lists the endpoint IDs of the gateway's routing table, in the
// order of that table. Allow-list entries name endpoints by these IDs, and the
// policy input carries the same IDs. Callers must not modify the slice.
var KnownEndpoints = []string{
	"version",
	"key_server",
	"key_query",
	"key_query_batch",
	"send",
	"event_auth",
	"backfill",
	"get_missing_events",
	"state",
	"state_ids",
	"event",
	"timestamp_to_event",
	"make_join",
	"send_join_v1",
	"send_join_v2",
	"make_leave",
	"send_leave_v1",
	"send_leave_v2",
	"make_knock",
	"send_knock",
	"invite_v1",
	"invite_v2",
	"exchange_third_party_invite",
	"3pid_onbind",
	"query",
	"query_directory",
	"query_profile",
	"user_devices",
	"user_keys_query",
	"user_keys_claim",
	"public_rooms",
	"public_rooms_search",
	"hierarchy",
	"openid_userinfo",
	"media_download",
	"media_thumbnail",
	"policy_sign",
	"well_known",
	"legacy_media_download",
	"legacy_media_thumbnail",
}

// IsKnownEndpoint reports whether id is one of [KnownEndpoints].
func IsKnownEndpoint(id string) bool {
	return slices.Contains(KnownEndpoints, id)
}
