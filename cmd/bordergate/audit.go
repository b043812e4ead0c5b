package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway/audit"
	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// errVerifyFailed is returned by audit verify when the report has
// problems, after the report has been printed.
var errVerifyFailed = errors.New("verification failed")

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and search decision log files",
	}
	cmd.AddCommand(newAuditVerifyCommand(), newAuditQueryCommand(), newAuditKeygenCommand())
	return cmd
}

func newAuditVerifyCommand() *cobra.Command {
	var (
		publicKeys, privateKeys []string
		opts                    audit.VerifyOptions
	)
	cmd := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check the hash chain and signed checkpoints of decision log files",
		Long: `Check that no record of the decision log files was removed, altered or
reordered, and that every checkpoint is signed by one of the given keys and
matches the chain. Give the files in any order, plain or gzip-compressed:
they are ordered by the sequence numbers of their records. The report names
each problem by file and line, and says how many records come after the
last checkpoint, which no signature covers yet.

Exit status 0 means the chain is intact; 1 means a problem was found or a
file could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			keys, err := loadVerifyKeys(publicKeys, privateKeys)
			if err != nil {
				return err
			}
			opts.Keys = keys
			report, err := audit.Verify(files, opts)
			if err != nil {
				if len(keys) == 0 && !opts.SkipSignatures {
					return fmt.Errorf("%w: pass --public-key FILE or --key FILE, or --skip-signatures to check only the hash chain", err)
				}
				return err
			}
			if err := report.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if !report.OK() {
				return errVerifyFailed
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&publicKeys, "public-key", nil, "PEM public key (PKIX) that checkpoints may be signed with; repeat for several keys")
	cmd.Flags().StringArrayVar(&privateKeys, "key", nil, "PEM private key (PKCS #8) whose public key checkpoints may be signed with, such as decision_log.signing_key_file; repeat for several keys")
	cmd.Flags().BoolVar(&opts.SkipSignatures, "skip-signatures", false, "check the hash chain only, without checking checkpoint signatures")
	cmd.Flags().BoolVar(&opts.RequireGenesis, "require-genesis", false, "fail unless the files start with the first record of the chain (seq 1)")
	return cmd
}

// loadVerifyKeys reads the public keys of --public-key and --key.
func loadVerifyKeys(publicKeys, privateKeys []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, path := range append(append([]string(nil), publicKeys...), privateKeys...) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		key, err := decisionlog.ParseVerifyKey(data)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// queryFlags are the flags of audit query.
type queryFlags struct {
	since, until, decision string
	reason, reasonRegexp   string
	format                 string
	workers                int
	filter                 audit.Filter
}

func newAuditQueryCommand() *cobra.Command {
	var flags queryFlags
	cmd := &cobra.Command{
		Use:   "query FILE...",
		Short: "Print the decision records that match filters",
		Long: `Print the records of the decision log files that match every filter given.
A filter given several times matches any of its values. Files may be given
in any order and gzip-compressed; they are read in chain order, several at
once. Checkpoint records are left out unless --checkpoints is given.

--since and --until take an RFC 3339 time (2026-03-14T09:00:00Z), a date
(2026-03-14, midnight UTC) or a duration before now (90m, 24h). --since is
inclusive, --until exclusive.

The table shows the time in UTC, the decision, the action, the HTTP status,
the direction, origin, destination, endpoint, room, event or EDU type, the
decision ID and the error or policy reasons. --format jsonl prints each
matching line exactly as it is in the file, chain member included, so that
the output can be checked against the chain and piped into jq.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			opts, err := flags.options(time.Now())
			if err != nil {
				return err
			}
			stats, err := audit.Query(cmd.Context(), files, opts, cmd.OutOrStdout())
			if stats.Malformed > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped %d lines that are not records (torn writes); run bordergate audit verify on the files\n", stats.Malformed)
			}
			return err
		},
	}
	f := cmd.Flags()
	filter := &flags.filter
	f.StringVar(&flags.since, "since", "", "only records at or after this time")
	f.StringVar(&flags.until, "until", "", "only records before this time")
	f.StringArrayVar(&filter.Origins, "origin", nil, "matrix.origin, the server that sent the request")
	f.StringArrayVar(&filter.Destinations, "destination", nil, "matrix.destination, the server the request went to")
	f.StringArrayVar(&filter.Rooms, "room", nil, "matrix.room_id")
	f.StringArrayVar(&filter.EventTypes, "event-type", nil, "matrix.event_type of a PDU or matrix.edu_type of an EDU, such as m.room.message")
	f.StringArrayVar(&filter.Endpoints, "endpoint", nil, "matrix.endpoint, the endpoint ID such as send or make_join")
	f.StringArrayVar(&filter.Directions, "direction", nil, "matrix.direction: inbound or outbound")
	f.StringVar(&flags.decision, "decision", "", "allow or deny")
	f.StringArrayVar(&filter.Actions, "action", nil, "action: forward, withheld, denied, rejected, redacted, removed, answered")
	f.StringArrayVar(&filter.DecisionIDs, "decision-id", nil, "decision_id, as returned in the gateway's error responses")
	f.StringVar(&flags.reason, "reason", "", "substring of the error or of one of result.reasons")
	f.StringVar(&flags.reasonRegexp, "reason-regex", "", "regular expression (Go RE2 syntax) matching the error or one of result.reasons")
	f.BoolVar(&filter.Checkpoints, "checkpoints", false, "include the checkpoint records")
	f.StringVar(&flags.format, "format", audit.FormatTable, "output: table, jsonl (the lines as written) or count")
	f.IntVar(&flags.workers, "workers", 0, "goroutines that filter, and files read at once (default: the number of CPUs)")
	return cmd
}

// options turns the flags into query options, with durations taken
// before now.
func (flags *queryFlags) options(now time.Time) (audit.QueryOptions, error) {
	opts := audit.QueryOptions{Filter: flags.filter, Format: flags.format, Workers: flags.workers}
	var err error
	if flags.since != "" {
		if opts.Filter.Since, err = audit.ParseTime(flags.since, now); err != nil {
			return opts, fmt.Errorf("--since: %w", err)
		}
	}
	if flags.until != "" {
		if opts.Filter.Until, err = audit.ParseTime(flags.until, now); err != nil {
			return opts, fmt.Errorf("--until: %w", err)
		}
	}
	switch flags.decision {
	case "", audit.DecisionAllow, audit.DecisionDeny:
		opts.Filter.Decision = flags.decision
	default:
		return opts, fmt.Errorf("invalid --decision %q: write allow or deny", flags.decision)
	}
	opts.Filter.Reason = flags.reason
	if flags.reasonRegexp != "" {
		if opts.Filter.ReasonPattern, err = regexp.Compile(flags.reasonRegexp); err != nil {
			return opts, fmt.Errorf("invalid --reason-regex: %w", err)
		}
	}
	if flags.workers < 0 {
		return opts, fmt.Errorf("invalid --workers %d: write a positive number, or 0 for the number of CPUs", flags.workers)
	}
	return opts, nil
}

func newAuditKeygenCommand() *cobra.Command {
	var (
		keyFile, publicFile string
		force               bool
	)
	cmd := &cobra.Command{
		Use:   "keygen --key FILE [--public-key FILE]",
		Short: "Create the Ed25519 key that signs decision log checkpoints",
		Long: `Create an Ed25519 audit key in PEM (PKCS #8), the form that
openssl genpkey -algorithm ed25519 writes, with mode 0600, and optionally
its public key (PKIX PEM) for auditors. Set decision_log.signing_key_file to
the key; give auditors the public key for bordergate audit verify.
Existing files are never replaced unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyID, err := decisionlog.WriteAuditKeyFiles(keyFile, publicFile, force)
			if err != nil {
				return existError(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created the audit key %s.\n  private key:  %s\n", keyID, keyFile)
			if publicFile != "" {
				fmt.Fprintf(out, "  public key:   %s\n", publicFile)
			}
			fmt.Fprint(out, `
Set decision_log.signing_key_file in the gateway configuration to the
private key, readable by the gateway only. Auditors verify with the public
key: bordergate audit verify --public-key FILE DECISION_LOG_FILES...
See docs/decision-records.md for details.
`)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "file to write the private key to, mode 0600 (required)")
	cmd.Flags().StringVar(&publicFile, "public-key", "", "file to write the public key to, mode 0644")
	cmd.Flags().BoolVar(&force, "force", false, "replace the files if they exist")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
