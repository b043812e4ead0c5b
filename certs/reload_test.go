package certs

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// replaceFile writes data to a temporary file next to path and renames it
// over path, as deployment tools do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// pairFiles is a server key pair on disk.
type pairFiles struct {
	certFile, keyFile string
}

// issuePair issues a server certificate for hs2.localhost and 127.0.0.1 and
// returns its PEM files' contents and serial number.
func issuePair(t *testing.T, ca *CA) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServer([]string{"hs2.localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, parsePEMCert(t, certPEM).SerialNumber
}

func writePair(t *testing.T, files pairFiles, certPEM, keyPEM []byte) {
	t.Helper()
	replaceFile(t, files.certFile, certPEM)
	replaceFile(t, files.keyFile, keyPEM)
}

func newPairFiles(t *testing.T) pairFiles {
	dir := t.TempDir()
	return pairFiles{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
}

func leafSerial(t *testing.T, kp *ReloadingKeyPair) *big.Int {
	t.Helper()
	return kp.Certificate().Leaf.SerialNumber
}

// errorRecorder collects the errors passed to [ReloadOptions.OnError].
type errorRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *errorRecorder) record(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *errorRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

func TestReloadingKeyPairReload(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, key1, serial1 := issuePair(t, ca)
	writePair(t, files, cert1, key1)
	clock := newTestClock()

	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile, ReloadOptions{Now: clock.Now})
	if err != nil {
		t.Fatalf("NewReloadingKeyPair: %v", err)
	}
	if got := leafSerial(t, kp); got.Cmp(serial1) != 0 {
		t.Fatalf("serial = %s, want %s", got, serial1)
	}

	cert2, key2, serial2 := issuePair(t, ca)
	writePair(t, files, cert2, key2)
	if got := leafSerial(t, kp); got.Cmp(serial1) != 0 {
		t.Errorf("serial before Reload and before the interval = %s, want the old %s", got, serial1)
	}
	if err := kp.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := leafSerial(t, kp); got.Cmp(serial2) != 0 {
		t.Errorf("serial after Reload = %s, want %s", got, serial2)
	}
	client, err := kp.GetClientCertificate(nil)
	if err != nil || client != kp.Certificate() {
		t.Errorf("GetClientCertificate = %p, %v, want the current pair %p", client, err, kp.Certificate())
	}
}

func TestReloadingKeyPairCheckOnAccess(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, key1, serial1 := issuePair(t, ca)
	writePair(t, files, cert1, key1)
	clock := newTestClock()
	var errs errorRecorder

	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile,
		ReloadOptions{Now: clock.Now, OnError: errs.record})
	if err != nil {
		t.Fatal(err)
	}
	cert2, key2, serial2 := issuePair(t, ca)
	writePair(t, files, cert2, key2)

	clock.Advance(DefaultReloadInterval - time.Second)
	if got := leafSerial(t, kp); got.Cmp(serial1) != 0 {
		t.Errorf("serial before the interval = %s, want the old %s", got, serial1)
	}
	clock.Advance(time.Second)
	if got := leafSerial(t, kp); got.Cmp(serial2) != 0 {
		t.Errorf("serial after the interval = %s, want %s", got, serial2)
	}
	if n := errs.count(); n != 0 {
		t.Errorf("OnError called %d times, want 0: %v", n, errs.errs)
	}
}

func TestReloadingKeyPairBrokenFiles(t *testing.T) {
	ca := newTestCA(t)
	cert1, key1, serial1 := issuePair(t, ca)
	cert2, _, _ := issuePair(t, ca)
	const suffix = " (the previously loaded key pair stays in use)"

	tests := []struct {
		name    string
		break_  func(files pairFiles)
		wantErr func(files pairFiles) string
	}{
		{
			name:   "certificate not PEM",
			break_: func(files pairFiles) { replaceFile(t, files.certFile, []byte("garbage\n")) },
			wantErr: func(files pairFiles) string {
				return "reload key pair: certificate file " + files.certFile + ": no PEM CERTIFICATE block found"
			},
		},
		{
			name:   "key not PEM",
			break_: func(files pairFiles) { replaceFile(t, files.keyFile, []byte("garbage\n")) },
			wantErr: func(files pairFiles) string {
				return "reload key pair: key file " + files.keyFile + ": no PEM private key block found " +
					"(expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
			},
		},
		{
			name:   "certificate replaced without its key",
			break_: func(files pairFiles) { replaceFile(t, files.certFile, cert2) },
			wantErr: func(files pairFiles) string {
				return "reload key pair: key file " + files.keyFile +
					" does not match the first certificate in " + files.certFile
			},
		},
		{
			name: "certificate removed",
			break_: func(files pairFiles) {
				if err := os.Remove(files.certFile); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: func(files pairFiles) string {
				return "reload key pair: read certificate file: open " + files.certFile + ": no such file or directory"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := newPairFiles(t)
			writePair(t, files, cert1, key1)
			kp, err := NewReloadingKeyPair(files.certFile, files.keyFile, ReloadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			before := kp.Certificate()

			tt.break_(files)
			err = kp.Reload()
			if want := tt.wantErr(files) + suffix; err == nil || err.Error() != want {
				t.Errorf("Reload() error = %v\nwant %q", err, want)
			}
			if kp.Certificate() != before {
				t.Errorf("pair replaced after a failed Reload, want serial %s kept", serial1)
			}
		})
	}
}

func TestReloadingKeyPairErrorReportedOnce(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, key1, _ := issuePair(t, ca)
	writePair(t, files, cert1, key1)
	clock := newTestClock()
	var errs errorRecorder
	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile,
		ReloadOptions{Now: clock.Now, OnError: errs.record, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	before := kp.Certificate()

	replaceFile(t, files.certFile, []byte("garbage\n"))
	clock.Advance(time.Minute)
	if kp.Certificate() != before {
		t.Fatal("pair replaced by a broken certificate file")
	}
	if n := errs.count(); n != 1 {
		t.Fatalf("OnError called %d times after the first check, want 1", n)
	}
	want := "reload key pair: certificate file " + files.certFile +
		": no PEM CERTIFICATE block found (the previously loaded key pair stays in use)"
	if got := errs.errs[0].Error(); got != want {
		t.Errorf("OnError error = %q\nwant %q", got, want)
	}

	// The same broken contents, rewritten, are not reported again.
	replaceFile(t, files.certFile, []byte("garbage\n"))
	clock.Advance(time.Minute)
	kp.Certificate()
	if n := errs.count(); n != 1 {
		t.Errorf("OnError called %d times for unchanged broken contents, want 1", n)
	}
	// An explicit Reload still returns the error, and OnError stays silent.
	if err := kp.Reload(); err == nil || err.Error() != want {
		t.Errorf("Reload() error = %v, want %q", err, want)
	}
	if n := errs.count(); n != 1 {
		t.Errorf("OnError called %d times after Reload, want 1", n)
	}

	cert2, key2, serial2 := issuePair(t, ca)
	writePair(t, files, cert2, key2)
	clock.Advance(time.Minute)
	if got := leafSerial(t, kp); got.Cmp(serial2) != 0 {
		t.Errorf("serial after fixing the files = %s, want %s", got, serial2)
	}
	if n := errs.count(); n != 1 {
		t.Errorf("OnError called %d times after fixing the files, want 1", n)
	}
}

func TestReloadingKeyPairMissingFileReportedOnce(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, key1, _ := issuePair(t, ca)
	writePair(t, files, cert1, key1)
	clock := newTestClock()
	var errs errorRecorder
	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile,
		ReloadOptions{Now: clock.Now, OnError: errs.record})
	if err != nil {
		t.Fatal(err)
	}
	before := kp.Certificate()

	if err := os.Remove(files.keyFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clock.Advance(DefaultReloadInterval)
		if kp.Certificate() != before {
			t.Fatal("pair replaced while the key file is missing")
		}
	}
	if n := errs.count(); n != 1 {
		t.Fatalf("OnError called %d times for a missing key file, want 1", n)
	}
	if !errors.Is(errs.errs[0], fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", errs.errs[0])
	}
}

func TestReloadingKeyPairSameContents(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, key1, _ := issuePair(t, ca)
	writePair(t, files, cert1, key1)
	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile, ReloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := kp.Certificate()

	writePair(t, files, cert1, key1)
	if err := kp.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if kp.Certificate() != before {
		t.Error("pair rebuilt although the contents did not change")
	}
}

func TestNewReloadingKeyPairErrors(t *testing.T) {
	ca := newTestCA(t)
	files := newPairFiles(t)
	cert1, _, _ := issuePair(t, ca)
	_, key2, _ := issuePair(t, ca)
	writePair(t, files, cert1, key2)
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name              string
		certFile, keyFile string
		want              string
	}{
		{"missing certificate", missing, files.keyFile,
			"read certificate file: open " + missing + ": no such file or directory"},
		{"missing key", files.certFile, missing,
			"read key file: open " + missing + ": no such file or directory"},
		{"mismatched key", files.certFile, files.keyFile,
			"key file " + files.keyFile + " does not match the first certificate in " + files.certFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReloadingKeyPair(tt.certFile, tt.keyFile, ReloadOptions{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("NewReloadingKeyPair() error = %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestReloadingPool(t *testing.T) {
	caA, caB := newTestCA(t), newTestCA(t)
	path := filepath.Join(t.TempDir(), "ca.pem")
	replaceFile(t, path, caA.CertPEM())
	certA := serverCert(t, caA, "hs1.localhost")
	certB := serverCert(t, caB, "hs1.localhost")

	pool, err := NewReloadingPool(path, ReloadOptions{})
	if err != nil {
		t.Fatalf("NewReloadingPool: %v", err)
	}
	checkPoolTrusts(t, pool.Pool(), certA, true)
	checkPoolTrusts(t, pool.Pool(), certB, false)

	replaceFile(t, path, caB.CertPEM())
	if err := pool.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	checkPoolTrusts(t, pool.Pool(), certA, false)
	checkPoolTrusts(t, pool.Pool(), certB, true)

	before := pool.Pool()
	replaceFile(t, path, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	err = pool.Reload()
	want := "reload CA bundle: certificate file " + path +
		": certificate 1: x509: malformed certificate (the previously loaded CA bundle stays in use)"
	if err == nil || err.Error() != want {
		t.Errorf("Reload() of a broken bundle error = %v\nwant %q", err, want)
	}
	if pool.Pool() != before {
		t.Error("pool replaced by a broken bundle")
	}
}

func checkPoolTrusts(t *testing.T, pool *x509.CertPool, cert *x509.Certificate, want bool) {
	t.Helper()
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if got := err == nil; got != want {
		t.Errorf("pool trusts certificate from %s: %v, want %v (verify error: %v)", cert.Issuer, got, want, err)
	}
}

func TestNewReloadingPoolEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.pem")
	replaceFile(t, path, nil)
	_, err := NewReloadingPool(path, ReloadOptions{})
	want := "certificate file " + path + ": no PEM CERTIFICATE block found"
	if err == nil || err.Error() != want {
		t.Errorf("NewReloadingPool() error = %v, want %q", err, want)
	}
}

func TestDigestSeparatesFiles(t *testing.T) {
	a := digest([][]byte{[]byte("ab"), []byte("c")})
	b := digest([][]byte{[]byte("a"), []byte("bc")})
	if a == b {
		t.Error("digest of [ab c] equals digest of [a bc]")
	}
}

// TestReloadingKeyPairSymlinkSwap replaces the files the way Kubernetes
// updates a secret volume: the files are symbolic links into a directory
// whose link is swapped by rename.
func TestReloadingKeyPairSymlinkSwap(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	writeVersion := func(name string) *big.Int {
		certPEM, keyPEM, serial := issuePair(t, ca)
		version := filepath.Join(dir, name)
		if err := os.Mkdir(version, 0o700); err != nil {
			t.Fatal(err)
		}
		writePair(t, pairFiles{filepath.Join(version, "tls.crt"), filepath.Join(version, "tls.key")}, certPEM, keyPEM)
		return serial
	}
	pointDataAt := func(name string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}

	serial1 := writeVersion("v1")
	pointDataAt("v1")
	files := pairFiles{filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")}
	for _, path := range []string{files.certFile, files.keyFile} {
		if err := os.Symlink(filepath.Join("..data", filepath.Base(path)), path); err != nil {
			t.Fatal(err)
		}
	}
	clock := newTestClock()
	kp, err := NewReloadingKeyPair(files.certFile, files.keyFile, ReloadOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := leafSerial(t, kp); got.Cmp(serial1) != 0 {
		t.Fatalf("serial = %s, want %s", got, serial1)
	}

	serial2 := writeVersion("v2")
	pointDataAt("v2")
	clock.Advance(DefaultReloadInterval)
	if got := leafSerial(t, kp); got.Cmp(serial2) != 0 {
		t.Errorf("serial after the symbolic link swap = %s, want %s", got, serial2)
	}
}
