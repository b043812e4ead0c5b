package routes

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMatchRequestURIFromServer sends raw request lines to a net/http server
// on loopback and matches the RequestURI its handler receives, to check that
// the server passes the target through unchanged.
func TestMatchRequestURIFromServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := Match(r.Method, r.RequestURI)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%s %q", res.Route.ID, res.Params)
	}))
	defer srv.Close()

	tests := []struct {
		requestLine string
		want        string
	}{
		{"GET /_matrix/federation/v1/event/$ä HTTP/1.1", `event map["event_id":"$ä"]`},
		{"GET /_matrix/federation/v1/event/$a%2Fb+c HTTP/1.1", `event map["event_id":"$a/b+c"]`},
		{"PUT /_matrix/federation/v1/send/12%33 HTTP/1.1", `send map["txn_id":"123"]`},
	}
	for _, tt := range tests {
		t.Run(tt.requestLine, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%s\r\nHost: example.org\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", tt.requestLine)

			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := string(body); got != tt.want {
				t.Errorf("handler saw %s, want %s", got, tt.want)
			}
		})
	}
}
