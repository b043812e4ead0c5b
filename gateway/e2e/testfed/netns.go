package testfed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envNetns is set, in the re-executed process, to the name of the network
// namespace it runs in.
const envNetns = "BORDERGATE_E2E_NETNS"

// netnsConfigDir is where `ip netns exec` looks for per-namespace files: it
// bind-mounts /etc/netns/NAME/FILE over /etc/FILE in the process it starts.
const netnsConfigDir = "/etc/netns"

// DefaultNetnsPrefix is the prefix of the namespaces that [RunInNetns] and
// [ReexecInNetns] create when NetnsOptions.Prefix is empty.
const DefaultNetnsPrefix = "bordergate-e2e"

// NetnsOptions configures the network namespace of an end-to-end run.
type NetnsOptions struct {
	// Prefix starts the namespace name, which continues with the process ID
	// of the outer process and a random suffix. Default DefaultNetnsPrefix.
	Prefix string

	// Hosts are the host names that the namespace's /etc/hosts maps to
	// 127.0.0.1. Default [LocalHosts].
	Hosts []string

	// Setup, when set, runs in the outer process before it re-executes
	// itself inside the namespace. It still has the machine's network, which
	// the namespace lacks, so it is the place to install binaries. An error
	// ends the run.
	Setup func(ctx context.Context) error
}

// skipReason is why the current test binary cannot use a namespace. The
// outer process sets it in RunInNetns, and RequireNetns reads it.
var skipReason string

// CurrentNetns returns the name of the namespace that [ReexecInNetns]
// started this process in, and false when the process runs outside one.
func CurrentNetns() (string, bool) {
	name := os.Getenv(envNetns)
	return name, name != ""
}

// NetnsUnsupported returns why this process cannot create a network
// namespace, or "" when it can: creating one needs root and the ip command.
func NetnsUnsupported() string {
	if os.Geteuid() != 0 {
		return "end-to-end tests need root to create a network namespace (run as root, e.g. sudo go test ./gateway/e2e/...)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "end-to-end tests need the ip command (iproute2) to create a network namespace: " + err.Error()
	}
	return ""
}

// RunInNetns runs the tests of m inside a fresh network namespace and returns
// the exit code for os.Exit. Call it from TestMain.
//
// Outside a namespace it creates one, runs opts.Setup, re-executes the test
// binary in the namespace with the same arguments, removes the namespace
// again and returns the inner run's exit code. Inside the namespace it calls
// m.Run. When the process is not root or ip is missing, it runs the tests
// directly and [RequireNetns] skips each of them with the reason.
func RunInNetns(m *testing.M, opts NetnsOptions) int {
	if _, inside := CurrentNetns(); inside {
		return m.Run()
	}
	if reason := NetnsUnsupported(); reason != "" {
		skipReason = reason
		return m.Run()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.Setup != nil {
		if err := opts.Setup(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "e2e setup outside the namespace failed: %v\n", err)
			return 1
		}
	}
	code, err := ReexecInNetns(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// RequireNetns skips tb unless the process runs inside a namespace created
// by [RunInNetns] or [ReexecInNetns].
func RequireNetns(tb testing.TB) {
	tb.Helper()
	if _, inside := CurrentNetns(); inside {
		return
	}
	if skipReason != "" {
		tb.Skip(skipReason)
	}
	tb.Skip("not inside an e2e network namespace: call testfed.RunInNetns from TestMain")
}

// ReexecInNetns creates a network namespace with loopback up and a hosts
// file that maps opts.Hosts to 127.0.0.1, runs the current executable with
// the current arguments inside it, waits for it and returns its exit code.
//
// When ctx ends, for example through [signal.NotifyContext] on SIGINT, the
// inner process gets SIGTERM, and SIGKILL 30 seconds later. Before returning, ReexecInNetns kills the processes still running in the
// namespace, deletes it and removes its /etc/netns directory, also when the
// inner process failed. It first removes namespaces with the same prefix
// whose creating process no longer exists, which a killed run leaves behind.
func ReexecInNetns(ctx context.Context, opts NetnsOptions) (int, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultNetnsPrefix
	}
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = LocalHosts
	}
	removeStaleNetns(ctx, prefix)

	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(suffix))
	ns, err := createNetns(ctx, name, hosts)
	if ns != nil {
		defer ns.remove()
	}
	if err != nil {
		return 1, err
	}

	exe, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("find current executable: %w", err)
	}
	args := append([]string{"netns", "exec", name, exe}, os.Args[1:]...)
	cmd := exec.Command("ip", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"="+name)
	// The inner process dies with this one. The next run then removes the
	// namespace left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("start %s in namespace %s: %w", exe, name, err)
	}
	return waitForwardingSignals(ctx, cmd)
}

// waitForwardingSignals waits for cmd. When ctx ends (a signal arrived), it
// sends SIGTERM to cmd and, if it is still running after 30 seconds, SIGKILL.
func waitForwardingSignals(ctx context.Context, cmd *exec.Cmd) (int, error) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}

	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("wait for the process in the namespace: %w", err)
	}
	return 0, nil
}

// netns is a network namespace created by this process.
type netns struct {
	name string
	// removeConfigRoot is set when this process created /etc/netns, so that
	// remove deletes it again once it is empty.
	removeConfigRoot bool
	added            bool
}

func createNetns(ctx context.Context, name string, hosts []string) (*netns, error) {
	ns := &netns{name: name}
	if _, err := os.Stat(netnsConfigDir); errors.Is(err, fs.ErrNotExist) {
		ns.removeConfigRoot = true
	}

	if err := runIP(ctx, "netns", "add", name); err != nil {
		return ns, err
	}
	ns.added = true

	dir := filepath.Join(netnsConfigDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ns, fmt.Errorf("create %s: %w", dir, err)
	}
	hostsFile := "127.0.0.1\tlocalhost " + strings.Join(hosts, " ") + "\n::1\tlocalhost\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hostsFile), 0o644); err != nil {
		return ns, fmt.Errorf("write hosts file of namespace %s: %w", name, err)
	}
	// Nothing listens on port 53 in the namespace, so a DNS query fails at
	// once instead of leaving it.
	resolv := "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return ns, fmt.Errorf("write resolv.conf of namespace %s: %w", name, err)
	}
	if err := runIP(ctx, "netns", "exec", name, "ip", "link", "set", "lo", "up"); err != nil {
		return ns, err
	}
	return ns, nil
}

// remove kills the processes left in the namespace, deletes it and removes
// its configuration directory. It logs failures to stderr, because it runs
// on the way out.
func (ns *netns) remove() {
	// A fresh context, because a signal may already have cancelled the
	// caller's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if ns.added {
		killNetnsProcesses(ctx, ns.name)
		if err := runIP(ctx, "netns", "delete", ns.name); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(netnsConfigDir, ns.name)); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: remove configuration of namespace %s: %v\n", ns.name, err)
	}
	if ns.removeConfigRoot {
		// Fails harmlessly when another namespace still has files there.
		_ = os.Remove(netnsConfigDir)
	}
}

// killNetnsProcesses sends SIGKILL to every process in the namespace and
// waits up to five seconds for them to exit. All of them were started by
// this run, as nothing else enters the namespace.
func killNetnsProcesses(ctx context.Context, name string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
		if err != nil {
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "e2e: processes %v still run in namespace %s\n", pids, name)
			return
		}
		for _, field := range pids {
			if pid, err := strconv.Atoi(field); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeStaleNetns deletes namespaces named prefix-PID-HEX whose PID no
// longer exists. Such namespaces remain when a run was killed with SIGKILL
// before it could clean up.
func removeStaleNetns(ctx context.Context, prefix string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return
	}
	pattern := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `-(\d+)-[0-9a-f]+$`)
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		match := pattern.FindStringSubmatch(fields[0])
		if match == nil {
			continue
		}
		pid, err := strconv.Atoi(match[1])
		if err != nil || processExists(pid) {
			continue
		}
		fmt.Fprintf(os.Stderr, "e2e: removing namespace %s left by process %d\n", fields[0], pid)
		(&netns{name: fields[0], added: true}).remove()
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hostsView is a second name for the current network namespace, with a
// hosts file of its own. A process started with its launcher prefix shares
// the namespace's loopback addresses with this process but resolves host
// names through the view's hosts file, because ip netns exec bind-mounts
// /etc/netns/NAME/hosts over /etc/hosts for the command it runs.
type hostsView struct {
	name string
}

// newHostsView attaches a new name to the current namespace and writes its
// hosts file, which maps each host of hosts to its address. It must run
// inside a namespace created by [ReexecInNetns].
//
// The name is the namespace's own followed by more hex digits, so that a
// later run's removeStaleNetns, which matches PREFIX-PID-HEX, also removes
// a view that a killed run left behind.
func newHostsView(ctx context.Context, hosts map[string]string) (*hostsView, error) {
	current, inside := CurrentNetns()
	if !inside {
		return nil, errors.New("create hosts view: not inside an e2e network namespace")
	}
	suffix := make([]byte, 2)
	_, _ = rand.Read(suffix)
	view := &hostsView{name: current + hex.EncodeToString(suffix)}
	if err := runIP(ctx, "netns", "attach", view.name, strconv.Itoa(os.Getpid())); err != nil {
		return nil, fmt.Errorf("create hosts view: %w", err)
	}

	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
	for _, host := range slices.Sorted(maps.Keys(hosts)) {
		fmt.Fprintf(&b, "%s\t%s\n", hosts[host], host)
	}
	dir := filepath.Join(netnsConfigDir, view.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return view, fmt.Errorf("create hosts view: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(b.String()), 0o644); err != nil {
		return view, fmt.Errorf("create hosts view: %w", err)
	}
	return view, nil
}

// launcher returns the command-line prefix that runs a command with the
// view's hosts file.
func (v *hostsView) launcher() []string {
	return []string{"ip", "netns", "exec", v.name}
}

// remove deletes the name and its hosts file. The namespace itself stays,
// because this process still runs in it.
func (v *hostsView) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := runIP(ctx, "netns", "delete", v.name)
	if rmErr := os.RemoveAll(filepath.Join(netnsConfigDir, v.name)); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove hosts view: %w", rmErr))
	}
	return err
}
