package gateway

// Log attribute keys. Every log line of the gateway uses these names, so
// that logs can be searched by them.
const (
	keyAddress     = "address"
	keyComponent   = "component"
	keyCount       = "count"
	keyDebounce    = "debounce"
	keyDecisionID  = "decision_id"
	keyDestination = "destination"
	keyEndpoint    = "endpoint"
	keyErr         = "err"
	keyErrcode     = "errcode"
	keyFile        = "file"
	keyKeyID       = "key_id"
	keyKind        = "kind"
	keyListener    = "listener"
	keyNewRevision = "new_revision"
	keyOldRevision = "old_revision"
	keyOrigin      = "origin"
	keyReason      = "reason"
	keyRevision    = "revision"
	keyRole        = "role"
	keyRoomID      = "room_id"
	keyRoomVersion = "room_version"
	keyServerName  = "server_name"
	keyServerNames = "server_names"
	keySource      = "source"
	keyStatus      = "status"
	keySuppressed  = "suppressed"
	keyTrigger     = "trigger"
	keyURL         = "url"
)
