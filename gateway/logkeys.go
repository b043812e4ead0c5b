package gateway

// Log attribute keys. Every log line of the gateway uses these names, so
// that logs can be searched by them.
const (
	keyAddress     = "address"
	keyComponent   = "component"
	keyCount       = "count"
	keyDecisionID  = "decision_id"
	keyDestination = "destination"
	keyEndpoint    = "endpoint"
	keyErr         = "err"
	keyErrcode     = "errcode"
	keyFile        = "file"
	keyListener    = "listener"
	keyOrigin      = "origin"
	keyReason      = "reason"
	keyRoomID      = "room_id"
	keyRoomVersion = "room_version"
	keyServerName  = "server_name"
	keyServerNames = "server_names"
	keyStatus      = "status"
)
