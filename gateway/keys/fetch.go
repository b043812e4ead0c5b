package keys

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/servername"
)

const (
	keyServerPath = "/_matrix/key/v2/server"
	keyQueryPath  = "/_matrix/key/v2/query"
	// maxKeyResponseBytes bounds a key server or notary response body. A
	// key response with a few keys is well under 4 KiB, and a notary
	// response contains one key response per server in the query, which
	// names one server.
	maxKeyResponseBytes = 1 << 20
)

// dialFunc opens a connection, like net.Dialer.DialContext.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// fetchDirect fetches the keys of serverName from its own key server, at
// the entry's address when it has one and by discovery otherwise.
func (r *Ring) fetchDirect(ctx context.Context, serverName string, entry EntryInfo) ([]VerifyKey, error) {
	target, dial, err := r.connectTarget(ctx, serverName, entry.Address)
	if err != nil {
		return nil, err
	}
	body, err := r.roundTrip(ctx, target, dial, http.MethodGet, keyServerPath, nil)
	if err != nil {
		return nil, err
	}
	sk, err := ParseServerKeys(body)
	if err != nil {
		return nil, err
	}
	if sk.ServerName != serverName {
		return nil, fmt.Errorf("key response is for %q instead of %q", sk.ServerName, serverName)
	}
	if err := sk.VerifySelfSignature(); err != nil {
		return nil, err
	}
	return sk.Keys(r.now(), SourceServer), nil
}

// queryNotary queries notary n for the keys of serverName. Each key
// response it uses must be for serverName and carry a valid
// self-signature, plus a valid notary signature when n.Keys is set. Other
// key responses are skipped and logged.
func (r *Ring) queryNotary(ctx context.Context, n Notary, serverName string, keyIDs []string) ([]VerifyKey, error) {
	target, dial, err := r.connectTarget(ctx, n.ServerName, n.Address)
	if err != nil {
		return nil, fmt.Errorf("notary %s: %w", n.ServerName, err)
	}
	request := canonicaljson.Encode(r.notaryRequest(serverName, keyIDs))
	body, err := r.roundTrip(ctx, target, dial, http.MethodPost, keyQueryPath, request)
	if err != nil {
		return nil, fmt.Errorf("notary %s: %w", n.ServerName, err)
	}
	responses, err := parseNotaryResponse(body)
	if err != nil {
		return nil, fmt.Errorf("notary %s: %w", n.ServerName, err)
	}

	now := r.now()
	var keys []VerifyKey
	for _, sk := range responses {
		if err := checkNotaryAnswer(sk, n, serverName); err != nil {
			r.log.WarnContext(ctx, "notary key response rejected",
				"origin", serverName, "notary", n.ServerName, "err", err)
			continue
		}
		keys = append(keys, sk.Keys(now, SourceNotary)...)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("notary %s returned no valid key response for %s", n.ServerName, serverName)
	}
	return mergeKeys(keys), nil
}

// notaryRequest builds the POST /_matrix/key/v2/query body. Each key ID
// gets minimum_valid_until_ts set to now, so the notary refreshes keys
// whose validity has ended. Without key IDs the notary returns all keys of
// the server.
func (r *Ring) notaryRequest(serverName string, keyIDs []string) canonicaljson.Value {
	minValid := canonicaljson.ObjectValue(canonicaljson.Member{
		Key:   "minimum_valid_until_ts",
		Value: canonicaljson.IntValue(r.now().UnixMilli()),
	})
	criteria := make([]canonicaljson.Member, 0, len(keyIDs))
	for _, keyID := range keyIDs {
		criteria = append(criteria, canonicaljson.Member{Key: keyID, Value: minValid})
	}
	return canonicaljson.ObjectValue(canonicaljson.Member{
		Key: "server_keys",
		Value: canonicaljson.ObjectValue(canonicaljson.Member{
			Key:   serverName,
			Value: canonicaljson.ObjectValue(criteria...),
		}),
	})
}

func parseNotaryResponse(body []byte) ([]*ServerKeys, error) {
	v, err := canonicaljson.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("parse notary response: %w", err)
	}
	list, ok := v.Get("server_keys")
	if !ok || list.Kind() != canonicaljson.Array {
		return nil, fmt.Errorf("invalid notary response: server_keys missing or not an array")
	}
	out := make([]*ServerKeys, 0, list.Len())
	for i, item := range list.Items() {
		sk, err := parseServerKeysValue(item)
		if err != nil {
			return nil, fmt.Errorf("notary response server_keys[%d]: %w", i, err)
		}
		out = append(out, sk)
	}
	return out, nil
}

func checkNotaryAnswer(sk *ServerKeys, n Notary, serverName string) error {
	if sk.ServerName != serverName {
		return fmt.Errorf("key response is for %q instead of %q", sk.ServerName, serverName)
	}
	if err := sk.VerifySelfSignature(); err != nil {
		return err
	}
	if len(n.Keys) > 0 {
		return VerifyNotarySignature(sk, n.ServerName, n.Keys)
	}
	return nil
}

// connectTarget returns the target and dial function for serverName. A
// configured address is dialled without the address check, and its
// certificate must be valid for the host of serverName. Without one,
// discovery finds the target and the ring's checking dialer connects to it.
func (r *Ring) connectTarget(ctx context.Context, serverName, address string) (Target, dialFunc, error) {
	if address == "" {
		target, err := r.discovery.Resolve(ctx, serverName)
		if err != nil {
			return Target{}, nil, fmt.Errorf("discover %s: %w", serverName, err)
		}
		return target, r.dialer.DialContext, nil
	}

	host, _, err := servername.Split(serverName)
	if err != nil {
		return Target{}, nil, err
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialOperator(ctx, r.resolver, r.fetchTimeout, network, addr)
	}
	return Target{Addr: address, Host: serverName, TLSServerName: host}, dial, nil
}

// roundTrip sends one HTTPS request to target and returns the body of a
// 200 response. Redirects are not followed, since they would lead away
// from the name the certificate was checked against.
func (r *Ring) roundTrip(ctx context.Context, target Target, dial dialFunc, method, path string, body []byte) ([]byte, error) {
	client := r.httpClient(target, dial)
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, method, "https://"+target.Addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Host = target.Host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s returned status %s", method, path, resp.Status)
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s response: %w", path, err)
	}
	if len(data) > maxKeyResponseBytes {
		return nil, fmt.Errorf("%s response is larger than %d bytes", path, maxKeyResponseBytes)
	}
	return data, nil
}

// httpClient returns a client whose certificate check uses the name
// discovery gave, or the IP address of an IP literal target.
func (r *Ring) httpClient(target Target, dial dialFunc) *http.Client {
	serverName := target.TLSServerName
	if serverName == "" {
		serverName, _, _ = net.SplitHostPort(target.Addr)
	}
	transport := &http.Transport{
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			RootCAs:              r.rootCAs,
			ServerName:           serverName,
			MinVersion:           tls.VersionTLS12,
			GetClientCertificate: r.getClientCertificate,
		},
		TLSHandshakeTimeout:    r.fetchTimeout,
		ResponseHeaderTimeout:  r.fetchTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// getClientCertificate presents the configured client certificate to a
// key server that asks for one, and an empty one otherwise.
func (r *Ring) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if r.clientCert == nil {
		return &tls.Certificate{}, nil
	}
	return r.clientCert()
}
