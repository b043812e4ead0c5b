package testfed

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bordergate/bordergate/certs"
)

// KeyServer is a minimal federation peer: an HTTPS server that publishes one
// signing key at /_matrix/key/v2/server and returns 404 for any other path. It lets a
// test send correctly signed requests as a server that runs no homeserver,
// for example one missing from the gateway's allow-list.
type KeyServer struct {
	// Key is the server's signing key.
	Key SigningKey
	// Addr is the listening address, "127.0.0.1:PORT".
	Addr string

	server   *http.Server
	listener net.Listener
}

// StartKeyServer starts a key server for serverName on 127.0.0.1 at the port
// of serverName, with a TLS certificate for its host part from ca.
func StartKeyServer(serverName string, ca *certs.CA, log *slog.Logger) (*KeyServer, error) {
	host, port, err := net.SplitHostPort(serverName)
	if err != nil {
		return nil, fmt.Errorf("start key server: server name %q needs an explicit port: %w", serverName, err)
	}
	key, err := NewSigningKey(serverName, "")
	if err != nil {
		return nil, fmt.Errorf("start key server: %w", err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{host}, 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("start key server: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("start key server: %w", err)
	}

	addr := net.JoinHostPort(loopback, port)
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start key server: %w", err)
	}
	ks := &KeyServer{Key: key, Addr: addr, listener: listener}
	ks.server = &http.Server{
		Handler:           http.HandlerFunc(ks.serveHTTP),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		err := ks.server.ServeTLS(listener, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("key server stopped", "server_name", serverName, "err", err)
		}
	}()
	log.Info("key server started", "server_name", serverName, "addr", addr, "key_id", key.KeyID)
	return ks, nil
}

func (ks *KeyServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/_matrix/key/v2/server") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"only /_matrix/key/v2/server is served"}`))
		return
	}
	body, err := ks.keyResponse(time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// keyResponse builds the self-signed server key object, valid for one hour.
func (ks *KeyServer) keyResponse(now time.Time) ([]byte, error) {
	object := map[string]any{
		"server_name":     ks.Key.ServerName,
		"valid_until_ts":  now.Add(time.Hour).UnixMilli(),
		"verify_keys":     map[string]any{ks.Key.KeyID: map[string]any{"key": ks.Key.PublicKeyBase64()}},
		"old_verify_keys": map[string]any{},
	}
	if err := ks.Key.SignJSON(object); err != nil {
		return nil, err
	}
	return json.Marshal(object)
}

// Close stops the server.
func (ks *KeyServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ks.server.Shutdown(ctx)
}
