package decisionlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
)

// The hash chain. The commit goroutine ends every record with a chain
// member, so that the line as written is
//
//	{...record...,"chain":{"seq":N,"prev":"<64 hex>","hash":"<64 hex>"}}
//
// seq counts the records of the chain from 1. prev is the hash of the
// record before, 64 zeros for the first record. hash is the SHA-256, in
// lowercase hex, of the line's bytes from its first byte up to and
// including the quote that opens the hash value. The hash therefore covers
// the record exactly as written, its seq and its prev, and each record
// covers all records before it.

// chainPrefix starts the chain member, which is always the last member of
// the record object.
const chainPrefix = `,"chain":{"seq":`

// Literal parts of the chain member after the sequence number.
const (
	chainPrevKey = `,"prev":"`
	chainHashKey = `","hash":"`
	chainEnd     = `"}}`
)

// hashHexLen is the length of a SHA-256 hash in hex.
const hashHexLen = 2 * sha256.Size

// chainTailLen is the length of the chain member after the sequence number.
const chainTailLen = len(chainPrevKey) + hashHexLen + len(chainHashKey) + hashHexLen + len(chainEnd)

// maxChainLen is the maximum length of the chain member.
const maxChainLen = len(chainPrefix) + maxSeqDigits + chainTailLen

// maxSeqDigits bounds the digits of a sequence number, so that it fits in
// an int64 without overflow.
const maxSeqDigits = 18

// Hash is the SHA-256 hash of a record as written.
type Hash [sha256.Size]byte

// String returns the hash in lowercase hex, as records store it.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// ParseHash decodes a hash from its 64 lowercase hex digits.
func ParseHash(text string) (Hash, error) {
	var h Hash
	if len(text) != hashHexLen || !isLowerHex([]byte(text)) {
		return h, fmt.Errorf("invalid hash %q, want 64 lowercase hex digits", text)
	}
	_, _ = hex.Decode(h[:], []byte(text))
	return h, nil
}

// Chain is the chain member of a record as [Scan] decodes it. A Writer
// ignores the Chain of the records passed to Write and writes its own.
type Chain struct {
	// Seq is the sequence number of the record, from 1.
	Seq int64 `json:"seq"`
	// Prev is the hash of the record before, in hex.
	Prev string `json:"prev"`
	// Hash is the hash of this record, in hex.
	Hash string `json:"hash"`
}

// Link is the chain member of one line, read from the line's bytes by
// [ParseLink] without decoding the record.
type Link struct {
	// Seq is the sequence number of the record.
	Seq int64
	// Prev is the hash of the record before.
	Prev Hash
	// Hash is the hash that the line states for itself.
	Hash Hash
	// HashedLen is the number of bytes at the start of the line that Hash
	// covers.
	HashedLen int
}

// ErrNoChain is the cause of a ParseLink error for a line without a chain
// member, such as a record written before the chain existed.
var ErrNoChain = errors.New("record has no chain member")

// ParseLink reads the chain member at the end of line, which must not
// contain the newline. It checks the layout only: [Link.Verify] checks the
// hash. A line that does not end in a chain member gives ErrNoChain.
func ParseLink(line []byte) (Link, error) {
	n := len(line)
	if n < len(chainPrefix)+1+chainTailLen+2 || !bytes.HasSuffix(line, []byte(chainEnd)) {
		return Link{}, ErrNoChain
	}

	tail := line[n-chainTailLen:]
	prevHex := tail[len(chainPrevKey) : len(chainPrevKey)+hashHexLen]
	hashKeyAt := len(chainPrevKey) + hashHexLen
	hashHex := tail[hashKeyAt+len(chainHashKey) : hashKeyAt+len(chainHashKey)+hashHexLen]
	if !bytes.HasPrefix(tail, []byte(chainPrevKey)) ||
		!bytes.Equal(tail[hashKeyAt:hashKeyAt+len(chainHashKey)], []byte(chainHashKey)) {
		return Link{}, ErrNoChain
	}
	if !isLowerHex(prevHex) || !isLowerHex(hashHex) {
		return Link{}, errors.New("invalid chain member: prev and hash must be 64 lowercase hex digits")
	}

	seqEnd := n - chainTailLen
	seqStart := seqEnd
	for seqStart > 0 && seqEnd-seqStart <= maxSeqDigits && line[seqStart-1] >= '0' && line[seqStart-1] <= '9' {
		seqStart--
	}
	digits := line[seqStart:seqEnd]
	if !bytes.HasSuffix(line[:seqStart], []byte(chainPrefix)) {
		return Link{}, ErrNoChain
	}
	if len(digits) == 0 || len(digits) > maxSeqDigits || digits[0] == '0' {
		return Link{}, fmt.Errorf("invalid chain sequence number %q", digits)
	}
	seq, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return Link{}, fmt.Errorf("invalid chain sequence number %q: %w", digits, err)
	}

	link := Link{Seq: seq, HashedLen: n - len(chainEnd) - hashHexLen}
	_, _ = hex.Decode(link.Prev[:], prevHex)
	_, _ = hex.Decode(link.Hash[:], hashHex)
	return link, nil
}

// Verify reports whether the hash that line states for itself matches the
// line's bytes. line is the line that l was parsed from.
func (l Link) Verify(line []byte) bool {
	return sha256.Sum256(line[:l.HashedLen]) == l.Hash
}

// head is the last record of the chain: the one that the next record
// links to.
type head struct {
	seq  int64 // 0 before the first record
	hash Hash  // all zeros before the first record
}

// appendLinked appends record, the JSON encoding of one record with its
// trailing newline, to buf with the chain member of the record after h,
// and returns buf and the new head.
func (h head) appendLinked(buf, record []byte) ([]byte, head) {
	return h.appendLinkedHashed(buf, record, nil)
}

// appendLinkedHashed is appendLinked for a record whose body the caller
// has already hashed with hashBody, so that the commit goroutine hashes
// only the chain member. A nil body hashes the whole line here.
func (h head) appendLinkedHashed(buf, record []byte, body hash.Hash) ([]byte, head) {
	start := len(buf)
	// Drop the newline and the closing brace of the record object.
	buf = append(buf, record[:len(record)-2]...)
	member := len(buf)
	buf = append(buf, chainPrefix...)
	buf = strconv.AppendInt(buf, h.seq+1, 10)
	buf = append(buf, chainPrevKey...)
	buf = hex.AppendEncode(buf, h.hash[:])
	buf = append(buf, chainHashKey...)

	if body == nil {
		body = hashBody(buf[start:member])
	}
	body.Write(buf[member:])
	next := head{seq: h.seq + 1}
	body.Sum(next.hash[:0])
	buf = hex.AppendEncode(buf, next.hash[:])
	buf = append(buf, chainEnd...)
	buf = append(buf, '\n')
	return buf, next
}

// hashBody returns a SHA-256 state that has hashed the record body, the
// bytes of an encoded record before its closing brace and newline.
// Writers call it in their own goroutine, so that the commit goroutine
// only hashes the short chain member.
func hashBody(body []byte) hash.Hash {
	state := sha256.New()
	state.Write(body)
	return state
}

// isLowerHex reports whether b is 64 lowercase hex digits.
func isLowerHex(b []byte) bool {
	if len(b) != hashHexLen {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
