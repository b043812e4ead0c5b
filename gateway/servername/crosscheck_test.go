package servername

import (
	"strings"
	"testing"

	"github.com/matrix-org/gomatrixserverlib/spec"
)

// checkGMSLAgrees fails t unless gomatrixserverlib, which Dendrite uses,
// also accepts a name that Validate accepted and splits it the same way.
// Validate is meant to be at most as permissive as that library: it only
// narrows the grammar.
func checkGMSLAgrees(t *testing.T, name, host string, port int) {
	t.Helper()
	theirHost, theirPort, valid := spec.ParseAndValidateServerName(spec.ServerName(name))
	if !valid {
		t.Fatalf("gomatrixserverlib rejects %q, which Validate accepts", name)
	}
	wantHost := host
	if strings.Contains(host, ":") {
		wantHost = "[" + host + "]"
	}
	wantPort := port
	if port == 0 {
		wantPort = -1
	}
	if theirHost != wantHost || theirPort != wantPort {
		t.Fatalf("gomatrixserverlib splits %q into %q, %d; Split gives %q, %d",
			name, theirHost, theirPort, host, port)
	}
}

func TestValidNamesAgreeWithGMSL(t *testing.T) {
	for _, name := range []string{
		"matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234",
		"[1234:5678::abcd]", "[1234:5678::abcd]:5678", "[::1]:8448",
		"[::ffff:1.2.3.4]", "localhost", "0x1.example.org",
	} {
		host, port, err := Split(name)
		if err != nil {
			t.Fatalf("Split(%q) error = %v", name, err)
		}
		checkGMSLAgrees(t, name, host, port)
	}
}
