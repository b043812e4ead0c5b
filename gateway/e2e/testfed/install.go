package testfed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DendriteVersion is the Dendrite release that the harness installs and
// runs. Its config keys and command-line flags are the ones this package
// writes.
const DendriteVersion = "v0.13.8"

// dendriteModule is the Go module that contains the Dendrite commands.
const dendriteModule = "github.com/matrix-org/dendrite"

// dendriteCommands are the Dendrite binaries the harness uses.
var dendriteCommands = []string{"dendrite", "generate-config", "generate-keys", "create-account"}

// bordergateModule is the module path in the repository's go.mod.
const bordergateModule = "github.com/bordergate/bordergate"

// DendriteCacheDir returns the directory that caches the Dendrite binaries
// between runs: $XDG_CACHE_HOME/bordergate/dendrite-VERSION, or
// $HOME/.cache/bordergate/dendrite-VERSION when XDG_CACHE_HOME is not set.
// The binaries are in its bin subdirectory.
func DendriteCacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the cache directory: neither XDG_CACHE_HOME nor HOME is set: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "bordergate", "dendrite-"+DendriteVersion), nil
}

// FindDendrite returns the directory that holds all Dendrite binaries the
// harness uses, or an error naming the first one missing.
func FindDendrite() (string, error) {
	cacheDir, err := DendriteCacheDir()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(cacheDir, "bin")
	for _, command := range dendriteCommands {
		path := filepath.Join(binDir, command)
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("dendrite %s is not installed: %w", DendriteVersion, err)
		}
		if info.Mode()&0o111 == 0 {
			return "", fmt.Errorf("dendrite %s is not installed: %s is not executable", DendriteVersion, path)
		}
	}
	return binDir, nil
}

// EnsureDendrite returns the directory of the Dendrite binaries, installing
// them with `go install` first when one is missing. An install downloads
// Dendrite's module graph through the Go module proxy, so call it outside
// the network namespace. With an empty module cache it can take minutes. A lock
// file in the cache directory keeps concurrent runs from installing at the
// same time.
func EnsureDendrite(ctx context.Context, log *slog.Logger) (string, error) {
	if binDir, err := FindDendrite(); err == nil {
		return binDir, nil
	}
	cacheDir, err := DendriteCacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", cacheDir, err)
	}
	unlock, err := lockFile(filepath.Join(cacheDir, ".install.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	// Another run may have finished the install while this one waited.
	if binDir, err := FindDendrite(); err == nil {
		return binDir, nil
	}
	binDir := filepath.Join(cacheDir, "bin")
	args := []string{"install"}
	for _, command := range dendriteCommands {
		args = append(args, dendriteModule+"/cmd/"+command+"@"+DendriteVersion)
	}
	log.Info("installing dendrite", "version", DendriteVersion, "dir", binDir)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOBIN="+binDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return FindDendrite()
}

// lockFile takes an exclusive flock on path, waiting for other holders.
func lockFile(path string) (unlock func(), err error) {
	file, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX); err != nil {
		file.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		file.Close()
	}, nil
}

// BuildBordergate builds ./cmd/bordergate of the repository at repoRoot into
// outDir, which it creates when missing, and returns the binary's path.
//
// The build runs with GOPROXY=off, so that inside the network namespace,
// which has no route to the module proxy, a module missing from the local
// cache fails at once with a message naming it. Run `go mod download` in the
// repository to fill the cache.
func BuildBordergate(ctx context.Context, repoRoot, outDir string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build bordergate: %w", err)
	}
	out := filepath.Join(outDir, "bordergate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/bordergate")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bordergate in %s: %w\n%s", repoRoot, err, output)
	}
	return out, nil
}

// FindRepoRoot returns the closest directory at or above the working
// directory whose go.mod declares the bordergate module.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(data, bordergateModule) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod for module %s above the working directory", bordergateModule)
		}
		dir = parent
	}
}

func declaresModule(goMod []byte, module string) bool {
	for _, line := range bytes.Split(goMod, []byte("\n")) {
		fields := strings.Fields(string(line))
		if len(fields) == 2 && fields[0] == "module" && strings.Trim(fields[1], `"`) == module {
			return true
		}
	}
	return false
}
