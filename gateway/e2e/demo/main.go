// Command demo runs two Dendrite homeservers with bordergate in front of the
// second one, plays a short conversation through it and prints every
// decision record the gateway writes, one line each.
//
//	sudo go run ./gateway/e2e/demo [--keep] [--dir DIR] [--bin BORDERGATE]
//
// It must run as root: it creates a network namespace in which
// hs1.localhost and hs2.localhost resolve to 127.0.0.1, re-executes itself
// inside, and removes the namespace on exit. The scenario: alice@hs1 creates
// a room and invites bob@hs2, bob joins, both send a message, then alice
// sends a com.example.forbidden event and two more messages. The exit
// status is 0 when every step succeeded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// options are the command-line flags.
type options struct {
	keep     bool
	dir      string
	repoRoot string
	bin      string
	verbose  bool
}

func main() {
	var opts options
	flag.BoolVar(&opts.keep, "keep", false,
		"keep the federation running after the scenario until Ctrl-C, and keep its files")
	flag.StringVar(&opts.dir, "dir", "",
		"directory for the federation's configuration, databases and logs (default: a new temporary directory)")
	flag.StringVar(&opts.repoRoot, "repo", "",
		"bordergate repository root, which holds cmd/bordergate and rego (default: found from the working directory)")
	flag.StringVar(&opts.bin, "bin", "",
		"bordergate binary to run (default: build ./cmd/bordergate of the repository)")
	flag.BoolVar(&opts.verbose, "v", false, "log the harness's debug messages")
	flag.Parse()

	level := slog.LevelInfo
	if opts.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, opts, log))
}

// run re-executes the program inside a network namespace, or, when already
// inside, runs the demo.
func run(ctx context.Context, opts options, log *slog.Logger) int {
	if _, inside := testfed.CurrentNetns(); inside {
		if err := runDemo(ctx, opts, log); err != nil {
			fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
			return 1
		}
		return 0
	}

	if reason := testfed.NetnsUnsupported(); reason != "" {
		fmt.Fprintf(os.Stderr, "demo: %s\n", reason)
		return 1
	}
	// The namespace has no route to the Go module proxy, so Dendrite is
	// installed out here.
	if _, err := testfed.EnsureDendrite(ctx, log); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	code, err := testfed.ReexecInNetns(ctx, testfed.NetnsOptions{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
	}
	return code
}

func runDemo(ctx context.Context, opts options, log *slog.Logger) (err error) {
	repoRoot := opts.repoRoot
	if repoRoot == "" {
		if repoRoot, err = testfed.FindRepoRoot(); err != nil {
			return fmt.Errorf("%w (pass --repo)", err)
		}
	}
	dir, cleanup, err := workDir(opts)
	if err != nil {
		return err
	}
	defer func() { cleanup(err == nil && !opts.keep) }()

	bin := opts.bin
	if bin == "" {
		log.Info("building bordergate", "repo", repoRoot)
		if bin, err = testfed.BuildBordergate(ctx, repoRoot, filepath.Join(dir, "bin")); err != nil {
			return err
		}
	}
	fed, err := testfed.Start(ctx, testfed.Options{
		Dir: dir, Gateway: true, BordergateBin: bin, RepoRoot: repoRoot, Logger: log,
	})
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := fed.Close(); closeErr != nil {
			log.Warn("stopping the federation failed", "err", closeErr)
		}
	}()

	followCtx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() {
		followed <- testfed.FollowDecisions(followCtx, fed.GatewayLog, func(rec decisionlog.Record) error {
			fmt.Println(testfed.FormatDecision(rec))
			return nil
		})
	}()
	defer func() {
		// FollowDecisions reads the file every 100 ms: give it time to
		// print the records of the last requests.
		time.Sleep(300 * time.Millisecond)
		stopFollowing()
		if followErr := <-followed; followErr != nil && err == nil {
			err = fmt.Errorf("follow decision log: %w", followErr)
		}
	}()

	if err := playScenario(ctx, fed); err != nil {
		return err
	}
	if opts.keep {
		waitForInterrupt(ctx, fed, dir)
	}
	return nil
}

func playScenario(ctx context.Context, fed *testfed.Federation) error {
	conv, err := testfed.StartConversation(ctx, fed)
	if err != nil {
		return fmt.Errorf("conversation: %w", err)
	}
	result, err := testfed.SendForbidden(ctx, fed, conv)
	if err != nil {
		return fmt.Errorf("forbidden event: %w", err)
	}
	fmt.Fprintf(os.Stderr, "scenario complete: room %s, forbidden event %s, messages %s and %s reached bob\n",
		conv.RoomID, result.ForbiddenEventID, result.BatchedEventID, result.LaterEventID)
	return nil
}

func waitForInterrupt(ctx context.Context, fed *testfed.Federation, dir string) {
	fmt.Fprintf(os.Stderr, "federation running; press Ctrl-C to stop\n"+
		"  hs1 client API     %s\n  hs2 client API     %s\n  gateway            %s\n"+
		"  decision log       %s\n  files              %s\n",
		fed.HS1.ClientURL, fed.HS2.ClientURL, fed.Gateway.URL, fed.GatewayLog, dir)
	<-ctx.Done()
}

// workDir returns the federation directory and a function that removes it
// when called with true. A directory given with --dir is never removed.
func workDir(opts options) (string, func(remove bool), error) {
	if opts.dir != "" {
		dir, err := filepath.Abs(opts.dir)
		if err != nil {
			return "", nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return "", nil, err
		}
		if len(entries) > 0 {
			return "", nil, errors.New("--dir " + dir + " is not empty")
		}
		return dir, func(bool) {}, nil
	}
	dir, err := os.MkdirTemp("", "bordergate-demo-")
	if err != nil {
		return "", nil, err
	}
	return dir, func(remove bool) {
		if remove {
			os.RemoveAll(dir)
			return
		}
		fmt.Fprintf(os.Stderr, "federation files kept in %s\n", dir)
	}, nil
}
