package canonicaljson

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/matrix-org/gomatrixserverlib"
)

// crossCheckInputs are inputs on which this package and gomatrixserverlib,
// the library of Dendrite v0.13.8, must agree byte for byte.
var crossCheckInputs = []string{
	`{}`,
	`{"one": 1, "two": "Two"}`,
	`{"b": "2", "a": "1"}`,
	`{"a": "日本語", "本": 2, "日": 1}`,
	`{"a": "\u65E5", "b": "\u00e9\u0001\u001f"}`,
	`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe"}}}`,
	`{"content":{"body":"<b>hi</b> & \u2028 \u2029 \/"},"depth":12,"prev_events":["$a","$b"]}`,
	`{"\ud83d\ude00":2,"\ufb33":1,"z":[{"y":null,"x":false}]}`,
	`[1,-2,3,{"k":"v\"\\"}]`,
	`{"type":"m.room.message","origin_server_ts":1700000000000,"unsigned":{"age":3}}`,
}

// TestCrossCheckGomatrixserverlib compares the canonical form with an
// independent implementation on valid, unambiguous inputs.
func TestCrossCheckGomatrixserverlib(t *testing.T) {
	for _, in := range crossCheckInputs {
		ours, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		theirs, err := gomatrixserverlib.CanonicalJSON([]byte(in))
		if err != nil {
			t.Fatalf("gomatrixserverlib.CanonicalJSON(%q): %v", in, err)
		}
		if got := Encode(ours); !bytes.Equal(got, theirs) {
			t.Errorf("input %q:\n ours   %s\n theirs %s", in, got, theirs)
		}
	}
}

// FuzzParse checks that whatever Parse accepts encodes to a fixed point
// that encoding/json reads as the same document, and, where the input is
// unambiguous for gomatrixserverlib too, that both libraries agree.
func FuzzParse(f *testing.F) {
	for _, in := range crossCheckInputs {
		f.Add([]byte(in))
	}
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`"\ud800"`))
	f.Add([]byte("\"\xff\""))
	f.Add([]byte(`[1e10,-0,0.5]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		out := Encode(v)
		if !utf8.Valid(out) {
			t.Fatalf("Encode produced invalid UTF-8 for %q", data)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Encode(%q)) = %v", data, err)
		}
		if out2 := Encode(again); !bytes.Equal(out, out2) {
			t.Fatalf("not a fixed point: %q then %q", out, out2)
		}
		if !json.Valid(out) {
			t.Fatalf("encoding/json rejects %q", out)
		}
		if v.CheckStrictNumbers() != nil {
			return
		}
		theirs, err := gomatrixserverlib.CanonicalJSON(data)
		if err != nil {
			return
		}
		if !bytes.Equal(out, theirs) {
			t.Fatalf("input %q: ours %q, gomatrixserverlib %q", data, out, theirs)
		}
	})
}
