package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/certs"
)

func newCertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create the interception CA and client certificates for mutual TLS",
	}
	cmd.AddCommand(newCertsInitCACommand(), newCertsIssueClientCommand())
	return cmd
}

// keyPairFlags is the set of output file flags of a certs subcommand.
type keyPairFlags struct {
	certFile, keyFile string
	force             bool
}

func (f *keyPairFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&f.certFile, "cert", "", "file to write the "+what+" certificate to, mode 0644 (required)")
	cmd.Flags().StringVar(&f.keyFile, "key", "", "file to write the "+what+" private key to, mode 0600 (required)")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace --cert and --key if they exist")
	_ = cmd.MarkFlagRequired("cert")
	_ = cmd.MarkFlagRequired("key")
}

func (f *keyPairFlags) check() error {
	if filepath.Clean(f.certFile) == filepath.Clean(f.keyFile) {
		return fmt.Errorf("--cert and --key name the same file %s", f.certFile)
	}
	return nil
}

// existError adds the --force hint to an error about an existing file.
func existError(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w (pass --force to replace it)", err)
	}
	return err
}

func checkValidity(validity time.Duration) error {
	if validity <= 0 {
		return fmt.Errorf("invalid --validity %s: must be positive", validity)
	}
	return nil
}

func newCertsInitCACommand() *cobra.Command {
	var (
		files    keyPairFlags
		name     string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "init-ca --cert FILE --key FILE",
		Short: "Create the internal CA that signs interception certificates",
		Long: `Create the CA from which the outbound proxy mints a certificate for each host
that the local homeserver connects to. The homeserver trusts this CA for its
outbound federation TLS, so whoever holds the key can impersonate any server
to the homeserver. Keep the key readable by the gateway only.

The CA has an ECDSA P-256 key and may sign leaf certificates only. Existing
files are never replaced unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := files.check(); err != nil {
				return err
			}
			if err := checkValidity(validity); err != nil {
				return err
			}
			if name == "" {
				return errors.New("--name must not be empty")
			}
			ca, err := certs.NewCA(name, validity)
			if err != nil {
				return err
			}
			if files.force {
				err = ca.WriteFiles(files.certFile, files.keyFile)
			} else {
				err = ca.CreateFiles(files.certFile, files.keyFile)
			}
			if err != nil {
				return existError(err)
			}
			printInitCANextSteps(cmd.OutOrStdout(), ca.Certificate(), files)
			return nil
		},
	}
	files.register(cmd, "CA")
	cmd.Flags().StringVar(&name, "name", "bordergate interception CA", "subject common name of the CA")
	cmd.Flags().DurationVar(&validity, "validity", 87600*time.Hour, "lifetime of the CA certificate, as a Go duration (87600h is 3650 days)")
	return cmd
}

func printInitCANextSteps(w io.Writer, caCert *x509.Certificate, files keyPairFlags) {
	fmt.Fprintf(w, "Created the interception CA %q, valid until %s.\n",
		caCert.Subject.CommonName, caCert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  certificate:  %s\n", files.certFile)
	fmt.Fprintf(w, "  private key:  %s\n", files.keyFile)
	fmt.Fprintf(w, "  SHA-256 fingerprint: %s\n", fingerprint(caCert))
	fmt.Fprintf(w, `
Next steps:
  1. Set outbound.intercept_ca.cert_file and key_file in the gateway
     configuration to these two files.
  2. Make the homeserver trust %[1]s for its outbound
     federation TLS:
     Synapse: list the file in federation_custom_ca_list. Synapse applies
       that list to federation requests sent through https_proxy too, and
       it replaces the system roots for federation. Without the option,
       Synapse uses the OpenSSL default roots, so add the certificate to the
       system trust store, or to the bundle that SSL_CERT_FILE names in the
       environment of the Synapse process.
     Dendrite: add the certificate to the system trust store, or to the
       bundle that SSL_CERT_FILE names in the environment of the Dendrite
       process.
See docs/outbound.md for details.
`, files.certFile)
}

func newCertsIssueClientCommand() *cobra.Command {
	var (
		files             keyPairFlags
		caCertFile, caKey string
		serverName        string
		validity          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue-client --ca-cert FILE --ca-key FILE --server-name NAME --cert FILE --key FILE",
		Short: "Issue the gateway's client certificate for mutual TLS",
		Long: `Issue a client certificate (extended key usage TLS client authentication)
for the Matrix server NAME, signed by the CA in --ca-cert and --ca-key. The
gateway presents it to peers that require mutual TLS (outbound.client_tls),
and those peers list the CA in inbound.tls.client_ca_file.

Use the CA that the federating administrations agree on, such as a state or
test CA. Public ACME CAs are ending certificates for client authentication,
because the Chrome root program requires separate hierarchies for server and
client certificates from June 2026. Let's Encrypt removed that extended key
usage from its default certificates in February 2026.

The host part of NAME becomes the only subject alternative name. The CA key
must be an ECDSA key in PEM form (PKCS #8 or SEC 1). When the CA certificate
is not self-signed, it is appended to --cert so that a peer that trusts only
the root CA can build the chain. Existing files are never replaced unless
--force is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := files.check(); err != nil {
				return err
			}
			if err := checkValidity(validity); err != nil {
				return err
			}
			ca, err := certs.LoadCA(caCertFile, caKey)
			if err != nil {
				return err
			}
			certPEM, keyPEM, err := ca.IssueClient(serverName, validity)
			if err != nil {
				return err
			}
			caCert := ca.Certificate()
			if !isSelfSigned(caCert) {
				certPEM = append(certPEM, ca.CertPEM()...)
			}
			if files.force {
				err = certs.WriteKeyPairFiles(files.certFile, files.keyFile, certPEM, keyPEM)
			} else {
				err = certs.CreateKeyPairFiles(files.certFile, files.keyFile, certPEM, keyPEM)
			}
			if err != nil {
				return existError(err)
			}
			return printIssueClientResult(cmd.OutOrStdout(), certPEM, caCert, files)
		},
	}
	files.register(cmd, "client")
	cmd.Flags().StringVar(&caCertFile, "ca-cert", "", "PEM file of the issuing CA certificate (required)")
	cmd.Flags().StringVar(&caKey, "ca-key", "", "PEM file of the issuing CA private key (required)")
	cmd.Flags().StringVar(&serverName, "server-name", "", "Matrix server name the certificate names, such as hs2.example.org (required)")
	cmd.Flags().DurationVar(&validity, "validity", 8760*time.Hour, "lifetime of the certificate, as a Go duration, capped at the CA's expiry (8760h is 365 days)")
	for _, flag := range []string{"ca-cert", "ca-key", "server-name"} {
		_ = cmd.MarkFlagRequired(flag)
	}
	return cmd
}

func printIssueClientResult(w io.Writer, certPEM []byte, caCert *x509.Certificate, files keyPairFlags) error {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("issued certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("parse issued certificate: %w", err)
	}
	fmt.Fprintf(w, "Issued a client certificate for %s, valid until %s, signed by %q.\n",
		strings.Join(certs.PeerNames(cert), ", "), cert.NotAfter.UTC().Format(time.RFC3339), caCert.Subject.String())
	fmt.Fprintf(w, "  certificate:  %s\n", files.certFile)
	fmt.Fprintf(w, "  private key:  %s\n", files.keyFile)
	fmt.Fprint(w, `
Set outbound.client_tls.cert_file and key_file in the gateway configuration
to these two files. Peers that require mutual TLS must trust the issuing CA.
See docs/outbound.md for details.
`)
	return nil
}

func isSelfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(cert) == nil
}

// fingerprint returns the SHA-256 hash of the DER certificate as colon
// separated upper-case hex, the form openssl x509 -fingerprint prints.
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
