package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// envKeepDir, when set to a directory, makes each test keep its federation
// files under it instead of in a temporary directory.
const envKeepDir = "BORDERGATE_E2E_DIR"

// envBordergateBin, when set, names a bordergate binary to test instead of
// one built from the repository.
const envBordergateBin = "BORDERGATE_E2E_BIN"

func TestMain(m *testing.M) {
	os.Exit(testfed.RunInNetns(m, testfed.NetnsOptions{
		// Installing Dendrite needs the module proxy, which the namespace
		// cannot reach.
		Setup: func(ctx context.Context) error {
			_, err := testfed.EnsureDendrite(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)))
			return err
		},
	}))
}

// testDir returns the directory for a test's federation files. It is kept
// when the test fails, so that the homeserver and gateway logs can be read.
func testDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envKeepDir)
	if base != "" {
		dir := filepath.Join(base, t.Name())
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "bordergate-e2e-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("federation files kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// bordergateBinary returns the bordergate binary to test, built from the
// repository unless envBordergateBin names one, and the repository root.
func bordergateBinary(t *testing.T, ctx context.Context) (bin, repoRoot string) {
	t.Helper()
	repoRoot, err := testfed.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin = os.Getenv(envBordergateBin)
	if bin == "" {
		bin, err = testfed.BuildBordergate(ctx, repoRoot, t.TempDir())
		if err != nil {
			t.Fatalf("build bordergate: %v", err)
		}
	}
	return bin, repoRoot
}

// startFederation starts a federation for t and stops it when t ends. On
// failure it logs the end of every process log.
func startFederation(t *testing.T, ctx context.Context, opts testfed.Options) *testfed.Federation {
	t.Helper()
	opts.Dir = testDir(t)
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	fed, err := testfed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start federation: %v", err)
	}
	t.Logf("federation started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := fed.Close(); err != nil {
			t.Errorf("close federation: %v", err)
		}
		if t.Failed() {
			for _, file := range fed.LogFiles() {
				t.Logf("last lines of %s:\n%s", file, lastLines(file, 40))
			}
		}
	})
	return fed
}

func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
