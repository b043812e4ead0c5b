package decisionlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// CheckpointPath is the [Record.Path] of checkpoint records. No policy has
// this path, so checkpoints are easy to tell apart from decisions.
const CheckpointPath = "bordergate/audit/checkpoint"

// ActionCheckpoint is the [Record.Action] of checkpoint records.
const ActionCheckpoint = "checkpoint"

// checkpointDomain starts every signed checkpoint statement, so that a
// signature made for another purpose with the same key never verifies as a
// checkpoint.
const checkpointDomain = "bordergate audit checkpoint v1\n"

// Checkpoint is a signed statement that the chain had reached Seq with
// Hash. A checkpoint record is itself a record of the chain, placed right
// after the record it covers.
type Checkpoint struct {
	// Seq is the sequence number of the record that the checkpoint covers.
	Seq int64 `json:"seq"`
	// Hash is the hash of that record, in hex.
	Hash string `json:"hash"`
	// Time is when the checkpoint was made, in RFC 3339 with nanoseconds,
	// UTC. It is the record's timestamp too.
	Time string `json:"time"`
	// KeyID names the key that made Signature, see [KeyID].
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of [Checkpoint.Statement], in
	// standard base64 with padding.
	Signature string `json:"signature"`
}

// Statement returns the bytes that a checkpoint's signature covers: a fixed
// first line, then seq, hash, time and key ID on one line each.
func (cp *Checkpoint) Statement() []byte {
	b := []byte(checkpointDomain)
	b = append(b, "seq "...)
	b = strconv.AppendInt(b, cp.Seq, 10)
	b = append(b, "\nhash "...)
	b = append(b, cp.Hash...)
	b = append(b, "\ntime "...)
	b = append(b, cp.Time...)
	b = append(b, "\nkey_id "...)
	b = append(b, cp.KeyID...)
	b = append(b, '\n')
	return b
}

// VerifySignature checks the checkpoint's signature with pub. It does not
// check that the checkpoint matches the chain.
func (cp *Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	if want := KeyID(pub); cp.KeyID != want {
		return fmt.Errorf("checkpoint names key %q, not the key %q", cp.KeyID, want)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(cp.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("checkpoint signature is not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(pub, cp.Statement(), sig) {
		return errors.New("checkpoint signature does not verify")
	}
	return nil
}

// KeyID returns the key ID of an audit key: "ed25519:" followed by the
// first 16 hex digits of the SHA-256 of the public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// Signer signs checkpoints with an Ed25519 audit key.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit key is %d bytes, want an Ed25519 private key of %d", len(key), ed25519.PrivateKeySize)
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Signer{key: key, keyID: KeyID(pub)}, nil
}

// KeyID returns the key ID that the Signer's checkpoints name.
func (s *Signer) KeyID() string {
	return s.keyID
}

// PublicKey returns the public half of the Signer's key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.key.Public().(ed25519.PublicKey)
}

// sign returns the checkpoint covering h at time now.
func (s *Signer) sign(h head, now time.Time) *Checkpoint {
	cp := &Checkpoint{
		Seq:   h.seq,
		Hash:  h.hash.String(),
		Time:  now.UTC().Format(time.RFC3339Nano),
		KeyID: s.keyID,
	}
	cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, cp.Statement()))
	return cp
}
