package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeClientToken writes aliceToken to a token file and returns its path.
func writeClientToken(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alice.token")
	if err := os.WriteFile(path, []byte(aliceToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A token sent over plain HTTP to another host crosses the network in
// clear, so the client refuses it before connecting. On loopback the
// token stays on the machine.
func TestClientTokenOverPlainHTTP(t *testing.T) {
	tokenFile := writeClientToken(t)
	for _, url := range []string{"http://gateway.example.org:9448", "http://10.0.0.5:9448", "http://[2001:db8::1]:9448"} {
		_, err := NewClient(ClientOptions{URL: url, TokenFile: tokenFile})
		want := "refusing to send the token of " + tokenFile + " over plain HTTP to " + url +
			", which is not a loopback address (use an https:// admin URL)"
		if err == nil || err.Error() != want {
			t.Errorf("NewClient(%s) error:\n got %v\nwant %s", url, err, want)
		}
	}
	for _, url := range []string{"http://127.0.0.1:9448", "http://localhost:9448", "http://[::1]:9448", "https://gateway.example.org:9448"} {
		if _, err := NewClient(ClientOptions{URL: url, TokenFile: tokenFile}); err != nil {
			t.Errorf("NewClient(%s) error = %v, want none", url, err)
		}
	}
	if _, err := NewClient(ClientOptions{URL: "http://gateway.example.org:9448"}); err != nil {
		t.Errorf("NewClient without a token error = %v, want none", err)
	}
}

// The client follows no redirect, so the token never goes to an address
// other than the admin URL, nor over plain HTTP after an https URL.
func TestClientRefusesRedirects(t *testing.T) {
	var leaked []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"revision": "x", "entries": [], "sources": []}`))
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	client, err := NewClient(ClientOptions{URL: redirector.URL, TokenFile: writeClientToken(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.List(t.Context())
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTemporaryRedirect || !strings.Contains(apiErr.Message, "redirect to "+target.URL+"/v1/allowlist not followed") {
		t.Errorf("List() through a redirect error = %v, want a 307 error naming the redirect", err)
	}
	if len(leaked) > 0 {
		t.Errorf("the redirect target received %d requests, with Authorization %q", len(leaked), leaked)
	}
}
