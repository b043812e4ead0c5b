package testfed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a process may take to exit after SIGTERM before it
// gets SIGKILL.
const stopTimeout = 10 * time.Second

// process is a child process whose standard output and error go to a log
// file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	log     *slog.Logger

	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// startProcess starts argv in dir with env added to the current environment,
// appending its output to logPath. The process gets SIGKILL if this process
// dies first.
func startProcess(name, dir, logPath string, env []string, log *slog.Logger, argv ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	log.Info("process started", "process", name, "pid", cmd.Process.Pid, "log", logPath)

	p := &process{name: name, logPath: logPath, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited returns a channel that is closed when the process has exited.
func (p *process) exited() <-chan struct{} {
	return p.done
}

// exitError describes how the process ended, with the end of its log.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, tailFile(p.logPath, 30))
}

// stop sends SIGTERM, waits up to stopTimeout and then sends SIGKILL. It
// returns nil when the process exited after the signal, whatever its status.
func (p *process) stop() error {
	select {
	case <-p.done:
		p.log.Info("process already exited", "process", p.name, "err", p.waitErr)
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		p.log.Info("process stopped", "process", p.name)
		return nil
	case <-time.After(stopTimeout):
	}
	p.log.Warn("process ignored SIGTERM, killing it", "process", p.name, "timeout", stopTimeout)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// kill sends SIGKILL, as a crash would end the process, and waits until
// it has exited.
func (p *process) kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	p.log.Info("process killed", "process", p.name)
	return nil
}

// waitUntil calls ready every 100 ms until it returns nil, the process exits
// or ctx ends. The returned error carries ready's last error, or the exit
// status and the end of the process log.
func (p *process) waitUntil(ctx context.Context, what string, ready func(ctx context.Context) error) error {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var lastErr error
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = ready(attemptCtx)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("wait for %s: %w", what, p.exitError())
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w, last attempt failed: %v\nlast lines of %s:\n%s",
				what, ctx.Err(), lastErr, p.logPath, tailFile(p.logPath, 30))
		case <-ticker.C:
		}
	}
}

// tailFile returns the last n lines of the file at path, or a note saying
// why it cannot be read.
func tailFile(path string, n int) string {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer file.Close()

	// Only the last 64 KiB are read, so very long lines can leave fewer
	// than n.
	const window = 64 << 10
	if info, err := file.Stat(); err == nil && info.Size() > window {
		_, _ = file.Seek(-window, io.SeekEnd)
	}
	data, err := io.ReadAll(file)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(string(bytes.TrimRight(data, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
