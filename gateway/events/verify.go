package events

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/keys"
)

// SigStatus is the outcome of checking one signature.
type SigStatus string

// Signature outcomes.
const (
	// SigValid is a signature that verifies with a known, valid key.
	SigValid SigStatus = "valid"
	// SigInvalid is a signature that does not verify with its known, valid
	// key, or that is not 64 bytes of base64.
	SigInvalid SigStatus = "invalid"
	// SigUnknownKey is a signature by a key the lookup does not know. It is
	// skipped.
	SigUnknownKey SigStatus = "unknown_key"
	// SigExpiredKey is a signature by a key that was not valid at the
	// event's origin_server_ts. It is skipped.
	SigExpiredKey SigStatus = "expired_key"
	// SigRevokedKey is a signature by a key the allow-list revokes. It is
	// skipped.
	SigRevokedKey SigStatus = "revoked_key"
	// SigLookupFailed is a signature whose key could not be looked up for
	// another reason, such as a network error. It is skipped, and the error
	// is reported when the server has no valid signature.
	SigLookupFailed SigStatus = "lookup_failed"
	// SigUnsupportedAlgorithm is a signature with a key ID whose algorithm
	// is not ed25519. It is skipped.
	SigUnsupportedAlgorithm SigStatus = "unsupported_algorithm"
)

// Result is the outcome of [Verify].
type Result struct {
	// EventID is the event ID.
	EventID string
	// ContentHashValid reports whether `hashes.sha256` matches the content
	// hash computed from the event.
	ContentHashValid bool
	// Redacted is the event redacted by its room version's rules when the
	// content hash is invalid, and the zero Value otherwise. Only the
	// redacted event may be used when the hash is invalid.
	Redacted canonicaljson.Value
	// RequiredSigners are the servers that must have signed the event, as
	// [RequiredSigners] returns them.
	RequiredSigners []string
	// Signatures holds the outcome of each signature of a required server,
	// by server name and key ID. Signatures of other servers are not
	// checked and not listed.
	Signatures map[string]map[string]SigStatus
	// SignedBy lists the required servers with at least one valid
	// signature, in the order of RequiredSigners.
	SignedBy []string
	// Err is nil when every required server has at least one valid
	// signature and no invalid one. Otherwise it wraps [ErrSignature], and
	// also the lookup error when a key could not be looked up.
	Err error
}

// Verify checks the content hash and the signatures of pdu.
//
// Each required server must have signed the event. Of its signatures,
// those with a key ID of another algorithm than ed25519, a key the lookup
// does not know, a revoked key or a key not valid at the event's
// origin_server_ts are skipped. Every remaining signature must verify, and
// at least one must remain. A nil lookup is treated as one without keys.
//
// A content hash mismatch is not an error: as homeservers do, the caller
// continues with Result.Redacted in place of the event.
func Verify(ctx context.Context, pdu *PDU, lookup keys.Lookup) Result {
	return VerifyWith(ctx, pdu, lookup, VerifyOptions{})
}

// VerifyOptions adds what the receiver knows about how an event arrived.
type VerifyOptions struct {
	// Origin is the authenticated server that delivered the event. When
	// set, a third-party invite, which its sender's server need not sign,
	// must be signed by the origin instead, so that no event passes with
	// no signature at all.
	Origin string
}

// VerifyWith is [Verify] with options.
func VerifyWith(ctx context.Context, pdu *PDU, lookup keys.Lookup, opts VerifyOptions) Result {
	res := pdu.startResult(opts)
	signatures, _ := pdu.Event.Get("signatures")
	for _, server := range res.RequiredSigners {
		statuses, err := pdu.verifyServer(ctx, lookup, signatures, server)
		res.addServer(server, statuses, err)
	}
	return res
}

// startResult returns the Result of pdu before any signature is checked.
func (p *PDU) startResult(opts VerifyOptions) Result {
	rv := p.RoomVersion
	hashValid := p.contentHashMatches()
	res := Result{
		EventID:          p.EventID,
		ContentHashValid: hashValid,
		RequiredSigners:  requiredSigners(p, rv, hashValid, opts.Origin),
	}
	if !res.ContentHashValid {
		res.Redacted = Redact(p.Event, rv)
	}
	res.Signatures = make(map[string]map[string]SigStatus, len(res.RequiredSigners))
	res.SignedBy = make([]string, 0, len(res.RequiredSigners))
	return res
}

// addServer records the outcome of the signatures of one required server.
func (res *Result) addServer(server string, statuses map[string]SigStatus, err error) {
	if statuses != nil {
		res.Signatures[server] = statuses
	}
	if err == nil {
		res.SignedBy = append(res.SignedBy, server)
	} else if res.Err == nil {
		res.Err = err
	}
}

// contentHashMatches reports whether `hashes.sha256` decodes to the
// computed content hash.
func (p *PDU) contentHashMatches() bool {
	hashes, _ := p.Event.Get("hashes")
	text, _ := hashes.GetString("sha256")
	claimed, err := decodeHash(text)
	return err == nil && claimed == p.contentHash
}

// verifyServer checks the signatures of one required server. It returns
// the outcome of each signature, and an error unless one is valid and none
// is invalid.
func (p *PDU) verifyServer(ctx context.Context, lookup keys.Lookup, signatures canonicaljson.Value, server string) (map[string]SigStatus, error) {
	sigs, ok := signatures.Get(server)
	if !ok || sigs.Len() == 0 {
		return nil, errNoSignature(server)
	}

	statuses := make(map[string]SigStatus, sigs.Len())
	var lookupErr error
	for _, m := range sigs.Members() {
		sig, _ := m.Value.Str()
		status, err := p.checkSignature(ctx, lookup, server, m.Key, sig)
		statuses[m.Key] = status
		if status == SigLookupFailed && lookupErr == nil {
			lookupErr = err
		}
	}
	return statuses, serverOutcome(sigs, statuses, server, lookupErr)
}

func errNoSignature(server string) error {
	return fmt.Errorf("%w: no signature from required server %q", ErrSignature, server)
}

// serverOutcome returns nil when one of the signatures sigs of server is
// valid and none is invalid, and otherwise the error naming the first
// invalid signature in key ID order, lookupErr, or the skipped signatures.
func serverOutcome(sigs canonicaljson.Value, statuses map[string]SigStatus, server string, lookupErr error) error {
	valid := false
	for _, m := range sigs.Members() {
		switch statuses[m.Key] {
		case SigValid:
			valid = true
		case SigInvalid:
			return fmt.Errorf("%w: signature %s of server %q is invalid", ErrSignature, m.Key, server)
		}
	}

	switch {
	case valid:
		return nil
	case lookupErr != nil:
		return fmt.Errorf("%w: no signature from required server %q could be checked: %w", ErrSignature, server, lookupErr)
	}
	return fmt.Errorf("%w: no signature from required server %q could be checked (%s)", ErrSignature, server, describeStatuses(sigs, statuses))
}

// checkSignature checks the signature sig made with key keyID of server.
// The error is set only for SigLookupFailed.
func (p *PDU) checkSignature(ctx context.Context, lookup keys.Lookup, server, keyID, sig string) (SigStatus, error) {
	status, key, raw, err := p.resolveSignature(ctx, lookup, server, keyID, sig)
	if status != sigPending {
		return status, err
	}
	if !verifyExpanded(key, p.signedBytes, raw[:]) {
		return SigInvalid, nil
	}
	return SigValid, nil
}

// sigPending is the status resolveSignature returns for a signature that
// passed every check but the Ed25519 verification itself.
const sigPending SigStatus = ""

// resolveSignature looks up the key keyID of server and decodes sig. It
// returns sigPending with the expanded key and the 64 signature bytes when
// only the Ed25519 verification remains, and the final status otherwise.
// The error is set only for SigLookupFailed.
func (p *PDU) resolveSignature(ctx context.Context, lookup keys.Lookup, server, keyID, sig string) (SigStatus, *expandedKey, [ed25519.SignatureSize]byte, error) {
	var out [ed25519.SignatureSize]byte
	if !strings.HasPrefix(keyID, "ed25519:") {
		return SigUnsupportedAlgorithm, nil, out, nil
	}
	if lookup == nil {
		return SigUnknownKey, nil, out, nil
	}
	key, err := lookup.LookupKey(ctx, server, keyID)
	switch {
	case errors.Is(err, keys.ErrRevokedKey):
		return SigRevokedKey, nil, out, nil
	case errors.Is(err, keys.ErrUnknownKey):
		return SigUnknownKey, nil, out, nil
	case err != nil:
		return SigLookupFailed, nil, out, fmt.Errorf("look up key %s of %q: %w", keyID, server, err)
	case len(key.Public) != ed25519.PublicKeySize:
		return SigLookupFailed, nil, out, fmt.Errorf("look up key %s of %q: public key is %d bytes, not %d", keyID, server, len(key.Public), ed25519.PublicKeySize)
	}
	if !key.ValidForEventAt(time.UnixMilli(p.OriginServerTS), p.RoomVersion.EnforceKeyValidity) {
		return SigExpiredKey, nil, out, nil
	}

	var raw [ed25519.SignatureSize + 2]byte
	if len(sig) > 88 {
		return SigInvalid, nil, out, nil
	}
	n, err := decodeBase64(raw[:], sig)
	if err != nil || n != ed25519.SignatureSize {
		return SigInvalid, nil, out, nil
	}
	copy(out[:], raw[:n])
	return sigPending, publicKeys.get(key.Public), out, nil
}

// describeStatuses lists the key IDs of sigs with their outcome, in key ID
// order, such as "ed25519:a unknown_key, ed25519:b expired_key".
func describeStatuses(sigs canonicaljson.Value, statuses map[string]SigStatus) string {
	var b strings.Builder
	for i, m := range sigs.Members() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Key)
		b.WriteByte(' ')
		b.WriteString(string(statuses[m.Key]))
	}
	return b.String()
}
