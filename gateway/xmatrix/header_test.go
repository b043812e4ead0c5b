package xmatrix

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// sig is a real signature (the GET /version vector), which contains '+' and
// '/' and so is not an RFC 9110 token.
const sig = "wR1E4UZ3G3F2knf0x+RNgxQ2N/hCiZ/ZdOktAey0wSvTWc/nHH8YPJaOvRhipwX46AZPntLZhHd0DFjZ7H7iDQ"

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name     string
		values   []string
		want     []Credentials
		wantErr  error  // ErrMissing or ErrMalformed, nil on success
		wantText string // the exact error text
	}{
		{
			name:   "sender form",
			values: []string{`X-Matrix origin="origin.example",destination="dest.example",key="ed25519:key1",sig="` + sig + `"`},
			want:   []Credentials{{Origin: "origin.example", Destination: "dest.example", KeyID: "ed25519:key1", Signature: sig}},
		},
		{
			name:   "whitespace after commas",
			values: []string{`X-Matrix origin="localhost:48078", key="ed25519:1", sig="` + sig + `"`},
			want:   []Credentials{{Origin: "localhost:48078", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "tabs and spaces around commas and equals",
			values: []string{"X-Matrix\t origin = \"a.example\" ,\tkey\t=\t\"ed25519:1\"  ,  sig=\"" + sig + "\"  "},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "unquoted values with colons and base64",
			values: []string{`X-Matrix origin=example.org,key=ed25519:a,sig=` + sig},
			want:   []Credentials{{Origin: "example.org", KeyID: "ed25519:a", Signature: sig}},
		},
		{
			name:   "unquoted origin with port",
			values: []string{`X-Matrix origin=example.org:8448,destination=dest.example:443,key=ed25519:a,sig=` + sig},
			want:   []Credentials{{Origin: "example.org:8448", Destination: "dest.example:443", KeyID: "ed25519:a", Signature: sig}},
		},
		{
			name:   "unquoted ipv6 origin",
			values: []string{`X-Matrix origin=[::1]:8448,key=ed25519:a,sig=` + sig},
			want:   []Credentials{{Origin: "[::1]:8448", KeyID: "ed25519:a", Signature: sig}},
		},
		{
			name:   "unquoted padded signature",
			values: []string{`X-Matrix origin=a.example,key=ed25519:a,sig=` + sig + `==`},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:a", Signature: sig + "=="}},
		},
		{
			name:   "quoted with escapes",
			values: []string{`X-Matrix origin="exam\ple.org",destination="dest\"\\",key="ed25519:\1",sig="\` + sig + `"`},
			want:   []Credentials{{Origin: "example.org", Destination: `dest"\`, KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "upper-case names and scheme",
			values: []string{`X-MATRIX ORIGIN="a.example",Destination="b.example",KEY="ed25519:1",Sig="` + sig + `"`},
			want:   []Credentials{{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "lower-case scheme",
			values: []string{`x-matrix origin="a.example",key="ed25519:1",sig="` + sig + `"`},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "any order",
			values: []string{`X-Matrix sig="` + sig + `",key="ed25519:1",destination="b.example",origin="a.example"`},
			want:   []Credentials{{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "historical key version",
			values: []string{`X-Matrix origin="a.example",key="ed25519:i+b2/x_Y",sig="` + sig + `"`},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:i+b2/x_Y", Signature: sig}},
		},
		{
			name:   "unknown parameters ignored",
			values: []string{`X-Matrix realm="x y",origin="a.example",future=1,key="ed25519:1",sig="` + sig + `"`},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name:   "empty list elements",
			values: []string{`X-Matrix ,origin="a.example",,key="ed25519:1", ,sig="` + sig + `",`},
			want:   []Credentials{{Origin: "a.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name: "bearer header skipped",
			values: []string{
				"Bearer abc.def",
				`X-Matrix origin="a.example",key="ed25519:1",sig="` + sig + `"`,
			},
			want: []Credentials{{Origin: "a.example", KeyID: "ed25519:1", Signature: sig}},
		},
		{
			name: "two headers from one origin",
			values: []string{
				`X-Matrix origin="a.example",destination="b.example",key="ed25519:1",sig="` + sig + `"`,
				`X-Matrix origin="a.example",destination="b.example",key="ed25519:2",sig="AAAA"`,
			},
			want: []Credentials{
				{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:1", Signature: sig},
				{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:2", Signature: "AAAA"},
			},
		},

		{
			name:     "no values",
			values:   nil,
			wantErr:  ErrMissing,
			wantText: "missing X-Matrix authorization header",
		},
		{
			name:     "empty value",
			values:   []string{""},
			wantErr:  ErrMissing,
			wantText: "missing X-Matrix authorization header",
		},
		{
			name:     "bearer only",
			values:   []string{"Bearer syt_abc"},
			wantErr:  ErrMissing,
			wantText: "missing X-Matrix authorization header",
		},
		{
			name:     "scheme without space",
			values:   []string{`X-Matrixorigin="a.example",key="ed25519:1",sig="x"`},
			wantErr:  ErrMissing,
			wantText: "missing X-Matrix authorization header",
		},
		{
			name:     "scheme alone",
			values:   []string{"X-Matrix"},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing parameter "origin"`,
		},
		{
			name:     "missing sig",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:1"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing parameter "sig"`,
		},
		{
			name:     "missing key",
			values:   []string{`X-Matrix origin="a.example",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing parameter "key"`,
		},
		{
			name:     "signature param named as in the spec's list",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:1",signature="` + sig + `"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing parameter "sig"`,
		},
		{
			name:     "duplicate parameter",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:1",ORIGIN="a.example",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: duplicate parameter "origin"`,
		},
		{
			name:     "duplicate unknown parameter",
			values:   []string{`X-Matrix origin="a.example",Foo=1,key="ed25519:1",foo=2,sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: duplicate parameter "foo"`,
		},
		{
			name: "two headers with different origins",
			values: []string{
				`X-Matrix origin="a.example",key="ed25519:1",sig="x"`,
				`X-Matrix origin="b.example",key="ed25519:1",sig="x"`,
			},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: header 2: origin "b.example" differs from "a.example" in an earlier header`,
		},
		{
			name: "two headers with different destinations",
			values: []string{
				`X-Matrix origin="a.example",destination="b.example",key="ed25519:1",sig="x"`,
				`X-Matrix origin="a.example",key="ed25519:2",sig="x"`,
			},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: header 2: destination "" differs from "b.example" in an earlier header`,
		},
		{
			name: "second header malformed",
			values: []string{
				`X-Matrix origin="a.example",key="ed25519:1",sig="x"`,
				`X-Matrix origin="a.example",key="ed25519:1"`,
			},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: header 2: missing parameter "sig"`,
		},
		{
			name:     "garbage",
			values:   []string{"X-Matrix ,=,"},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character '=' where a parameter name was expected`,
		},
		{
			name:     "token68 instead of parameters",
			values:   []string{"X-Matrix dGVzdA"},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing '=' after parameter "dGVzdA"`,
		},
		{
			name:     "quoted name",
			values:   []string{`X-Matrix "origin"="a.example"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character '"' where a parameter name was expected`,
		},
		{
			name:     "missing comma",
			values:   []string{`X-Matrix origin="a.example" key="ed25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character 'k' after the value of parameter "origin", want ','`,
		},
		{
			name:     "semicolon separator",
			values:   []string{`X-Matrix origin=a.example;key=ed25519:1`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character ';' after the value of parameter "origin", want ','`,
		},
		{
			name:     "missing value",
			values:   []string{`X-Matrix origin=,key="ed25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character ',' where the value of parameter "origin" was expected`,
		},
		{
			name:     "missing value at end",
			values:   []string{`X-Matrix origin="a.example",sig=`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: missing value of parameter "sig"`,
		},
		{
			name:     "unterminated quoted value",
			values:   []string{`X-Matrix origin="a.example,key="ed25519:1"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character 'e' after the value of parameter "origin", want ','`,
		},
		{
			name:     "quoted value open at end",
			values:   []string{`X-Matrix origin="a.example`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: unterminated quoted value of parameter "origin"`,
		},
		{
			name:     "backslash at end",
			values:   []string{`X-Matrix origin="a.example\`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: unterminated quoted value of parameter "origin"`,
		},
		{
			name:     "control character in quoted value",
			values:   []string{"X-Matrix origin=\"a.exa\x01mple\""},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: byte 0x01 in the quoted value of parameter "origin"`,
		},
		{
			name:     "escaped control character",
			values:   []string{"X-Matrix origin=\"a.exa\\\nmple\""},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: byte 0x0a after '\' in the value of parameter "origin"`,
		},
		{
			name:     "unquoted value with quote",
			values:   []string{`X-Matrix origin=a"b`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: character '"' after the value of parameter "origin", want ','`,
		},
		{
			name:     "invalid origin",
			values:   []string{`X-Matrix origin="a_b",key="ed25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: origin: invalid server name "a_b": character '_' not allowed`,
		},
		{
			name:     "empty origin",
			values:   []string{`X-Matrix origin="",key="ed25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: origin: invalid server name "": empty`,
		},
		{
			name:     "empty destination",
			values:   []string{`X-Matrix origin="a.example",destination="",key="ed25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: empty parameter "destination"`,
		},
		{
			name:     "empty sig",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:1",sig=""`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: empty parameter "sig"`,
		},
		{
			name:     "other key algorithm",
			values:   []string{`X-Matrix origin="a.example",key="curve25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "curve25519:1": unsupported algorithm "curve25519", only ed25519 is supported`,
		},
		{
			name:     "upper-case key algorithm",
			values:   []string{`X-Matrix origin="a.example",key="ED25519:1",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "ED25519:1": unsupported algorithm "ED25519", only ed25519 is supported`,
		},
		{
			name:     "key without algorithm",
			values:   []string{`X-Matrix origin="a.example",key="abc",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "abc": want ed25519:<version>`,
		},
		{
			name:     "key with empty version",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "ed25519:": empty version`,
		},
		{
			name:     "key version with hyphen",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:a-b",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "ed25519:a-b": version may contain only letters, digits, '_', '+' and '/'`,
		},
		{
			name:     "key version with colon",
			values:   []string{`X-Matrix origin="a.example",key="ed25519:a:b",sig="x"`},
			wantErr:  ErrMalformed,
			wantText: `malformed X-Matrix authorization header: key "ed25519:a:b": version may contain only letters, digits, '_', '+' and '/'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.values)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseAuthorization(%q) error = %v", tt.values, err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("ParseAuthorization(%q) = %+v, want %+v", tt.values, got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseAuthorization(%q) error = %v, want it to wrap %v", tt.values, err, tt.wantErr)
			}
			if err != nil && err.Error() != tt.wantText {
				t.Errorf("ParseAuthorization(%q) error text = %q, want %q", tt.values, err.Error(), tt.wantText)
			}
			if got != nil {
				t.Errorf("ParseAuthorization(%q) = %+v with an error, want nil", tt.values, got)
			}
		})
	}
}

func TestFormatAuthorization(t *testing.T) {
	c := Credentials{Origin: "origin.example", Destination: "dest.example:8448", KeyID: "ed25519:key1", Signature: sig}
	got, err := FormatAuthorization(c)
	if err != nil {
		t.Fatalf("FormatAuthorization: %v", err)
	}
	want := `X-Matrix origin="origin.example",destination="dest.example:8448",key="ed25519:key1",sig="` + sig + `"`
	if got != want {
		t.Errorf("FormatAuthorization = %s\nwant %s", got, want)
	}
}

func TestFormatAuthorizationRejects(t *testing.T) {
	valid := Credentials{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:1", Signature: sig}
	tests := []struct {
		name    string
		change  func(*Credentials)
		wantErr string
	}{
		{"missing origin", func(c *Credentials) { c.Origin = "" }, "format X-Matrix header: missing origin"},
		{"missing destination", func(c *Credentials) { c.Destination = "" }, "format X-Matrix header: missing destination"},
		{"missing key", func(c *Credentials) { c.KeyID = "" }, "format X-Matrix header: missing key"},
		{"missing sig", func(c *Credentials) { c.Signature = "" }, "format X-Matrix header: missing sig"},
		{"quote", func(c *Credentials) { c.Origin = `a"b` }, `format X-Matrix header: origin "a\"b" needs escaping`},
		{"backslash", func(c *Credentials) { c.Destination = `a\b` }, `format X-Matrix header: destination "a\\b" needs escaping`},
		{"newline", func(c *Credentials) { c.KeyID = "ed25519:1\r\nX: y" }, `format X-Matrix header: key "ed25519:1\r\nX: y" needs escaping`},
		{"non-ascii", func(c *Credentials) { c.Origin = "bücher.de" }, `format X-Matrix header: origin "bücher.de" needs escaping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			got, err := FormatAuthorization(c)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("FormatAuthorization(%+v) = %q, %v, want error %q", c, got, err, tt.wantErr)
			}
		})
	}
}

func TestCredentialsLogValueOmitsSignature(t *testing.T) {
	c := Credentials{Origin: "a.example", Destination: "b.example", KeyID: "ed25519:1", Signature: sig}
	got := c.LogValue().String()
	if strings.Contains(got, sig) {
		t.Errorf("LogValue = %s, contains the signature", got)
	}
	for _, want := range []string{"a.example", "b.example", "ed25519:1"} {
		if !strings.Contains(got, want) {
			t.Errorf("LogValue = %s, missing %s", got, want)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		`X-Matrix origin="origin.example",destination="dest.example",key="ed25519:key1",sig="` + sig + `"`,
		`X-Matrix origin="localhost:48078", key="ed25519:1", sig="` + sig + `"`,
		`X-Matrix origin=example.org,key=ed25519:a,sig=` + sig,
		`X-Matrix origin="exam\ple.org",destination="dest\"\\",key="ed25519:\1",sig="x"`,
		"Bearer abc\n" + `X-Matrix origin=a.example,key=ed25519:a,sig=x`,
		`X-Matrix origin=a.example,key=ed25519:a,sig=x` + "\n" + `X-Matrix origin=b.example,key=ed25519:a,sig=x`,
		"X-Matrix ,=,",
		`X-Matrix origin="a`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		// A newline separates header values, so one input covers several.
		values := strings.Split(input, "\n")
		creds, err := ParseAuthorization(values)
		if err != nil {
			if errors.Is(err, ErrMissing) == errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps neither or both of ErrMissing and ErrMalformed", err)
			}
			if creds != nil {
				t.Fatalf("credentials %+v returned with error %v", creds, err)
			}
			return
		}
		if len(creds) == 0 {
			t.Fatal("no credentials and no error")
		}
		for _, c := range creds {
			if c.Origin != creds[0].Origin {
				t.Fatalf("origins %q and %q both accepted", creds[0].Origin, c.Origin)
			}
			header, err := FormatAuthorization(c)
			if err != nil {
				continue // not formattable, such as a header without destination
			}
			again, err := ParseAuthorization([]string{header})
			if err != nil {
				t.Fatalf("ParseAuthorization(FormatAuthorization(%+v) = %q): %v", c, header, err)
			}
			if len(again) != 1 || again[0] != c {
				t.Fatalf("round trip of %+v through %q gave %+v", c, header, again)
			}
		}
	})
}

func BenchmarkParseAuthorization(b *testing.B) {
	values := []string{`X-Matrix origin="origin.example",destination="dest.example",key="ed25519:a_Bcde",sig="` + sig + `"`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(values); err != nil {
			b.Fatal(err)
		}
	}
}
