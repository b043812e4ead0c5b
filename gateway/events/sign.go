package events

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// SignEvent returns a copy of the event v with its content hash set in
// `hashes.sha256` and an Ed25519 signature by serverName's key keyID added
// to `signatures`. The signature covers the event redacted by the rules of
// room version rv, without `signatures` and `unsigned`. Existing hashes of
// other algorithms and existing signatures are kept; an existing SHA-256
// hash is replaced.
//
// SignEvent does not check the event format, so it can sign test events
// that [ParsePDU] must reject.
func SignEvent(v canonicaljson.Value, rv *RoomVersion, serverName, keyID string, priv ed25519.PrivateKey) (canonicaljson.Value, error) {
	if v.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fmt.Errorf("sign event: event is a JSON %s, not an object", v.Kind())
	}
	if len(priv) != ed25519.PrivateKeySize {
		return canonicaljson.Value{}, fmt.Errorf("sign event: private key is %d bytes, not %d", len(priv), ed25519.PrivateKeySize)
	}

	hash := ContentHash(v)
	hashes := objectOrEmpty(v, "hashes").With("sha256", canonicaljson.StringValue(base64.RawStdEncoding.EncodeToString(hash[:])))
	v = v.With("hashes", hashes)

	buf := getBuffer()
	*buf = appendRedacted(*buf, v, rv, false)
	sig := ed25519.Sign(priv, *buf)
	putBuffer(buf)

	signatures := objectOrEmpty(v, "signatures")
	serverSigs := objectOrEmpty(signatures, serverName).
		With(keyID, canonicaljson.StringValue(base64.RawStdEncoding.EncodeToString(sig)))
	return v.With("signatures", signatures.With(serverName, serverSigs)), nil
}

// objectOrEmpty returns the object member key of v, or an empty object
// when v has no such object.
func objectOrEmpty(v canonicaljson.Value, key string) canonicaljson.Value {
	if m, ok := v.Get(key); ok && m.Kind() == canonicaljson.Object {
		return m
	}
	return canonicaljson.ObjectValue()
}
