package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// defaultNextProtos is the default of [ServerTLSOptions.NextProtos], HTTP/2
// and HTTP/1.1, which [net/http.Server] serves by default.
var defaultNextProtos = []string{"h2", "http/1.1"}

// ServerTLSOptions configures [ServerTLSConfigReloading].
type ServerTLSOptions struct {
	ReloadOptions

	// NextProtos is the ALPN protocol list of the listener, and must name
	// only protocols that the server behind it speaks. Default "h2" and
	// "http/1.1".
	//
	// The list is set here because every handshake uses a configuration
	// derived from the returned one, not the copy that
	// [net/http.Server.ServeTLS] makes and adds its protocols to.
	NextProtos []string
}

// Reloader rereads the files of a listener built by
// [ServerTLSConfigReloading]: its key pair and, when configured, its
// client CA bundle.
type Reloader struct {
	keyPair   *ReloadingKeyPair
	clientCAs *ReloadingPool // nil without a client CA file
}

// KeyPair returns the listener's certificate and key.
func (r *Reloader) KeyPair() *ReloadingKeyPair {
	return r.keyPair
}

// ClientCAs returns the listener's client CA bundle, or nil when the
// listener has none.
func (r *Reloader) ClientCAs() *ReloadingPool {
	return r.clientCAs
}

// Reload reads all files now. The key pair and the bundle each switch to
// their new contents if those changed and load. Otherwise they keep their
// previous contents, and Reload returns their errors joined.
func (r *Reloader) Reload() error {
	err := r.keyPair.Reload()
	if r.clientCAs != nil {
		err = errors.Join(err, r.clientCAs.Reload())
	}
	return err
}

// ServerTLSConfigReloading is [ServerTLSConfig] with files that are reread
// without a restart: each new handshake uses the current server
// certificate and the current client CA bundle. Changes are picked up on
// access at most once per [ReloadOptions.Interval], or at once by
// [Reloader.Reload]. Files that fail to load leave the previous contents in
// use (see [ReloadingKeyPair]).
//
// TLS 1.2 is the minimum version. With a clientCAFile, the listener
// verifies a client certificate whenever the client sends one
// ([tls.VerifyClientCertIfGiven]), so [tls.ConnectionState.VerifiedChains]
// is set for a trusted client. crypto/tls (Go 1.26) declines to resume a
// session whose verified chain does not end at a CA of the current bundle,
// so a CA that was removed is not trusted through an earlier session
// either.
//
// Errors of the first load name the file and what is wrong with it, as for
// [ServerTLSConfig].
func ServerTLSConfigReloading(certFile, keyFile, clientCAFile string, opts ServerTLSOptions) (*tls.Config, *Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("server TLS: certificate file and key file are both required")
	}
	keyPair, err := NewReloadingKeyPair(certFile, keyFile, opts.ReloadOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("server TLS: %w", err)
	}
	nextProtos := opts.NextProtos
	if len(nextProtos) == 0 {
		nextProtos = defaultNextProtos
	}
	config := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: keyPair.GetCertificate,
		NextProtos:     slices.Clone(nextProtos),
	}
	reloader := &Reloader{keyPair: keyPair}
	if clientCAFile == "" {
		return config, reloader, nil
	}

	clientCAs, err := NewReloadingPool(clientCAFile, opts.ReloadOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("server TLS: client CA: %w", err)
	}
	reloader.clientCAs = clientCAs
	config.ClientAuth = tls.VerifyClientCertIfGiven
	config.ClientCAs = clientCAs.Pool()
	config.GetConfigForClient = configForClient(config.Clone(), clientCAs)
	return config, reloader, nil
}

// derivedConfig is base with the client CA pool it was built for.
type derivedConfig struct {
	pool   *x509.CertPool
	config *tls.Config
}

// configForClient returns a [tls.Config.GetConfigForClient] callback that
// hands out base with the current pool of clientCAs. The configuration is
// rebuilt only when the pool changes.
func configForClient(base *tls.Config, clientCAs *ReloadingPool) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	var cached atomic.Pointer[derivedConfig]
	return func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := clientCAs.Pool()
		if d := cached.Load(); d != nil && d.pool == pool {
			return d.config, nil
		}
		config := base.Clone()
		config.ClientCAs = pool
		cached.Store(&derivedConfig{pool: pool, config: config})
		return config, nil
	}
}
