package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CreateFiles writes the CA certificate (mode 0644) and its PKCS #8 private
// key (mode 0600) to new files, as [CreateKeyPairFiles] does. If either file
// exists, it writes nothing and returns an error that wraps [fs.ErrExist]
// and names the file.
func (ca *CA) CreateFiles(certFile, keyFile string) error {
	keyPEM, err := encodePrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("create CA files: %w", err)
	}
	if err := CreateKeyPairFiles(certFile, keyFile, ca.certPEM, keyPEM); err != nil {
		return fmt.Errorf("create CA files: %w", err)
	}
	return nil
}

// WriteKeyPairFiles writes a certificate (mode 0644) and its private key
// (mode 0600), replacing existing files. Each file is renamed into place
// from a temporary file, so a reader never sees a partial file.
func WriteKeyPairFiles(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := checkDistinctFiles(certFile, keyFile); err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate file: %w", err)
	}
	return nil
}

// CreateKeyPairFiles writes a certificate (mode 0644) and its private key
// (mode 0600) to files that must not exist yet. If either exists, it writes
// nothing and returns an error that wraps [fs.ErrExist] and names the file.
// Files are opened with O_EXCL, so a file created by another process in the
// meantime is not overwritten either. If the certificate cannot be written,
// the new key file is removed.
func CreateKeyPairFiles(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := checkDistinctFiles(certFile, keyFile); err != nil {
		return err
	}
	for _, path := range []string{certFile, keyFile} {
		_, err := os.Lstat(path)
		if err == nil {
			return fmt.Errorf("%w: %s", fs.ErrExist, path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", path, err)
		}
	}

	if err := createFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if err := createFile(certFile, certPEM, 0o644); err != nil {
		os.Remove(keyFile)
		return fmt.Errorf("create certificate file: %w", err)
	}
	return nil
}

func checkDistinctFiles(certFile, keyFile string) error {
	if certFile == "" || keyFile == "" {
		return errors.New("certificate file and key file are both required")
	}
	if filepath.Clean(certFile) == filepath.Clean(keyFile) {
		return fmt.Errorf("certificate file and key file are the same file %s", certFile)
	}
	return nil
}

// createFile writes data to a new file at path with mode, regardless of the
// umask. A partly written file is removed.
func createFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
