package certs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func checkFile(t *testing.T, path string, wantData string, wantMode fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != wantData {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), data, wantData)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != wantMode {
		t.Errorf("mode of %s = %o, want %o", filepath.Base(path), got, wantMode)
	}
}

func checkAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (stat error %v), want it absent", filepath.Base(path), err)
	}
}

func TestCreateKeyPairFiles(t *testing.T) {
	files := newPairFiles(t)
	if err := CreateKeyPairFiles(files.certFile, files.keyFile, []byte("cert"), []byte("key")); err != nil {
		t.Fatalf("CreateKeyPairFiles: %v", err)
	}
	checkFile(t, files.certFile, "cert", 0o644)
	checkFile(t, files.keyFile, "key", 0o600)
}

func TestCreateKeyPairFilesExisting(t *testing.T) {
	tests := []struct {
		name     string
		existing func(files pairFiles) string
	}{
		{"certificate exists", func(files pairFiles) string { return files.certFile }},
		{"key exists", func(files pairFiles) string { return files.keyFile }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := newPairFiles(t)
			existing := tt.existing(files)
			if err := os.WriteFile(existing, []byte("old"), 0o640); err != nil {
				t.Fatal(err)
			}

			err := CreateKeyPairFiles(files.certFile, files.keyFile, []byte("cert"), []byte("key"))
			want := "file already exists: " + existing
			if err == nil || err.Error() != want {
				t.Errorf("CreateKeyPairFiles() error = %v, want %q", err, want)
			}
			if !errors.Is(err, fs.ErrExist) {
				t.Errorf("errors.Is(%v, fs.ErrExist) = false, want true", err)
			}
			checkFile(t, existing, "old", 0o640)
			for _, path := range []string{files.certFile, files.keyFile} {
				if path != existing {
					checkAbsent(t, path)
				}
			}
		})
	}
}

func TestCreateKeyPairFilesCertificateFails(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	certFile := filepath.Join(dir, "missing-dir", "cert.pem")

	err := CreateKeyPairFiles(certFile, keyFile, []byte("cert"), []byte("key"))
	want := "create certificate file: open " + certFile + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("CreateKeyPairFiles() error = %v\nwant %q", err, want)
	}
	checkAbsent(t, keyFile)
}

func TestKeyPairFilesSamePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.pem")
	want := "certificate file and key file are the same file " + path
	for name, write := range map[string]func(string, string, []byte, []byte) error{
		"CreateKeyPairFiles": CreateKeyPairFiles,
		"WriteKeyPairFiles":  WriteKeyPairFiles,
	} {
		err := write(path, filepath.Join(filepath.Dir(path), ".", "both.pem"), []byte("cert"), []byte("key"))
		if err == nil || err.Error() != want {
			t.Errorf("%s() error = %v, want %q", name, err, want)
		}
	}
	checkAbsent(t, path)
}

func TestWriteKeyPairFilesReplaces(t *testing.T) {
	files := newPairFiles(t)
	for _, path := range []string{files.certFile, files.keyFile} {
		if err := os.WriteFile(path, []byte("old"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteKeyPairFiles(files.certFile, files.keyFile, []byte("cert"), []byte("key")); err != nil {
		t.Fatalf("WriteKeyPairFiles: %v", err)
	}
	checkFile(t, files.certFile, "cert", 0o644)
	checkFile(t, files.keyFile, "key", 0o600)
}

func TestCACreateFiles(t *testing.T) {
	files := newPairFiles(t)
	ca := newTestCA(t)
	if err := ca.CreateFiles(files.certFile, files.keyFile); err != nil {
		t.Fatalf("CreateFiles: %v", err)
	}
	loaded, err := LoadCA(files.certFile, files.keyFile)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Error("loaded CA differs from the created one")
	}

	err = newTestCA(t).CreateFiles(files.certFile, files.keyFile)
	want := "create CA files: file already exists: " + files.certFile
	if err == nil || err.Error() != want {
		t.Errorf("second CreateFiles() error = %v, want %q", err, want)
	}
	loaded, err = LoadCA(files.certFile, files.keyFile)
	if err != nil || !loaded.Certificate().Equal(ca.Certificate()) {
		t.Errorf("files changed by a failed CreateFiles (LoadCA error %v)", err)
	}
}
