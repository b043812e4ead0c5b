package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway"
	"github.com/bordergate/bordergate/policy"
	"github.com/bordergate/bordergate/policy/policycmd"
)

const exitCodesHelp = `
Exit status: 0 on success, 1 on an error (a missing file, a policy that does
not parse or compile, invalid input), 2 when the command worked and its
outcome is negative.`

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, check, evaluate and replay the Rego policy",
	}
	cmd.AddCommand(newPolicyTestCommand(), newPolicyCheckCommand(), newPolicyEvalCommand(), newPolicyReplayCommand())
	return cmd
}

// formatFlag registers --format.
func formatFlag(cmd *cobra.Command) {
	cmd.Flags().String("format", string(policycmd.FormatPretty), "report format: pretty or json")
}

// pathsRunE returns the RunE of a command on the policy files named by its
// arguments: it stores them in paths and the checked --format in format,
// then calls run.
func pathsRunE(paths *[]string, format *policycmd.Format, run func(*cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		*paths = args
		var err error
		if *format, err = formatValue(cmd); err != nil {
			return err
		}
		return run(cmd)
	}
}

// formatValue returns the checked value of --format.
func formatValue(cmd *cobra.Command) (policycmd.Format, error) {
	return policycmd.ParseFormat(cmd.Flag("format").Value.String())
}

func newPolicyTestCommand() *cobra.Command {
	var cfg policycmd.TestConfig
	cmd := &cobra.Command{
		Use:   "test DIR_OR_FILE...",
		Short: "Run the Rego unit tests of a policy",
		Long: `Run the Rego unit tests (rules named test_...) of the .rego files in the given
files and directories, _test.rego files included, with OPA's test runner, and
print OPA's report: the tests that did not pass with their location, the
expression at which each failed and its print() output, then a summary.
Built-in function errors fail the test that raised them, as they deny in the
gateway.
` + exitCodesHelp + ` Status 2 means that a test failed, raised an error or
was skipped.`,
		Args: cobra.MinimumNArgs(1),
		RunE: pathsRunE(&cfg.Policy.Paths, &cfg.Format, func(cmd *cobra.Command) error {
			return policycmd.Test(cmd.Context(), cfg, cmd.OutOrStdout())
		}),
	}
	formatFlag(cmd)
	cmd.Flags().StringVar(&cfg.Policy.DataFile, "data", "", "policy data file (JSON or YAML), loaded as data.bordergate.config as the gateway loads it")
	cmd.Flags().StringVar(&cfg.Run, "run", "", "run only the tests whose full name (data.PACKAGE.test_NAME) matches this regular expression")
	cmd.Flags().BoolVarP(&cfg.Verbose, "verbose", "v", false, "report every test, and the trace of each failure")
	cmd.Flags().DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "time limit of each test, as a Go duration")
	return cmd
}

func newPolicyCheckCommand() *cobra.Command {
	var cfg policycmd.CheckConfig
	cmd := &cobra.Command{
		Use:   "check DIR_OR_FILE...",
		Short: "Parse and compile a policy and check its decision rules",
		Long: `Parse and compile the .rego files in the given files and directories, with
their _test.rego files, and check that the policy defines
data.bordergate.request.decision, data.bordergate.pdu.decision and
data.bordergate.edu.decision as rules with one value. Every problem is printed
with its file, line and column.
` + exitCodesHelp + ` A problem in the policy exits with 1.`,
		Args: cobra.MinimumNArgs(1),
		RunE: pathsRunE(&cfg.Policy.Paths, &cfg.Format, func(cmd *cobra.Command) error {
			return policycmd.Check(cmd.Context(), cfg, cmd.OutOrStdout())
		}),
	}
	formatFlag(cmd)
	cmd.Flags().StringVar(&cfg.Policy.DataFile, "data", "", "policy data file (JSON or YAML) that must load too")
	return cmd
}

// policySource is the set of flags that selects a policy: --policy, --data
// and --config.
type policySource struct {
	paths      []string
	dataFile   string
	configFile string
}

func (s *policySource) register(cmd *cobra.Command, pathsHelp string) {
	cmd.Flags().StringArrayVar(&s.paths, "policy", nil, pathsHelp)
	cmd.Flags().StringVar(&s.dataFile, "data", "", "policy data file (JSON or YAML), loaded as data.bordergate.config; default: policy.data_file of --config")
	cmd.Flags().StringVar(&s.configFile, "config", "", "gateway configuration whose policy.paths and policy.data_file are the defaults")
}

// resolve returns the policy configuration: the flags first, then the
// gateway configuration, then ./rego when fallback is set.
func (s *policySource) resolve(fallback bool) (policy.Config, error) {
	cfg := policy.Config{Paths: s.paths, DataFile: s.dataFile}
	if s.configFile != "" {
		gatewayConfig, err := gateway.LoadConfig(s.configFile)
		if err != nil {
			return policy.Config{}, err
		}
		if len(cfg.Paths) == 0 && gatewayConfig.Policy.Bundle != nil {
			// NOTE: the policy commands read policy files only, not the
			// bundle archive that the gateway fetches.
			return policy.Config{}, fmt.Errorf("%s takes its policy from a bundle (policy.bundle): pass --policy with the policy's files", s.configFile)
		}
		if len(cfg.Paths) == 0 {
			cfg.Paths = gatewayConfig.Policy.Paths
		}
		if cfg.DataFile == "" {
			cfg.DataFile = gatewayConfig.Policy.DataFile
		}
	}
	if len(cfg.Paths) == 0 {
		if !fallback {
			return policy.Config{}, fmt.Errorf("no policy: pass --policy DIR or --config FILE")
		}
		cfg.Paths = []string{"rego"}
	}
	return cfg, nil
}

func newPolicyEvalCommand() *cobra.Command {
	var (
		cfg    policycmd.EvalConfig
		source policySource
	)
	cmd := &cobra.Command{
		Use:   "eval --input FILE [--policy DIR]... [--data FILE] [--kind request|pdu|edu]",
		Short: "Evaluate one decision of a policy",
		Long: `Evaluate the request, PDU or EDU decision of the policy for one input and print
the decision with its reasons. FILE ("-" for standard input) holds a policy
input document (docs/policy-input.md) or a whole decision record, whose input
is evaluated and whose recorded decision is shown beside the new one. A key
that appears twice in an object of FILE is an error.

The kind of decision is --kind, else input.kind, else the record's path. The
policy is --policy, else policy.paths of --config, else ./rego.

Masking removes message content from decision records. When the policy reads
a value that was removed, eval says so, because the decision on the whole
input may differ.
` + exitCodesHelp + ` Status 2 only with --fail-on-deny, when the policy
denies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Format, err = formatValue(cmd); err != nil {
				return err
			}
			if cfg.Policy, err = source.resolve(true); err != nil {
				return err
			}
			cfg.Stdin = cmd.InOrStdin()
			return policycmd.Eval(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	formatFlag(cmd)
	source.register(cmd, "policy file or directory, repeatable (default: policy.paths of --config, else ./rego)")
	cmd.Flags().StringVar(&cfg.InputFile, "input", "", `input document or decision record in JSON, "-" for standard input (required)`)
	cmd.Flags().StringVar(&cfg.Kind, "kind", "", "kind of decision: request, pdu or edu (default: input.kind)")
	cmd.Flags().BoolVar(&cfg.FailOnDeny, "fail-on-deny", false, "exit with status 2 when the policy denies")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func newPolicyReplayCommand() *cobra.Command {
	var (
		cfg    policycmd.ReplayConfig
		source policySource
	)
	cmd := &cobra.Command{
		Use:   "replay --decisions FILE [FILE...] --policy DIR [--policy DIR]... [--data FILE]",
		Short: "Replay recorded decisions against a candidate policy",
		Long: `Evaluate the input of every decision record in the --decisions files with the
candidate policy and report what would change, compared with the decision
that the policy returned when the record was written (result.allow and
result.reasons, not the pipeline's final outcome): counts by kind of
decision, decisions that change from allow to deny and back, reasons added
and removed, with examples named by decision_id.

Files are JSON Lines decision logs, plain or gzip-compressed (rotated files),
read as streams in any order. Name them with --decisions, repeated, or as
arguments after it, so that a shell pattern such as
--decisions /var/log/bordergate/decisions.jsonl* works. A malformed line is
reported with its file and line number and skipped, unless --strict.

Records without a policy decision (refused before policy) are counted as
skipped, by reason. Masking removes message content from records: a record
from which masking removed a value that the candidate policy reads cannot be
replayed faithfully, and is reported apart instead of being evaluated.
` + exitCodesHelp + ` Status 2 means that at least one decision changes
from allow to deny or from deny to allow, so that a CI pipeline can stop the
deployment of the candidate.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if cfg.Format, err = formatValue(cmd); err != nil {
				return err
			}
			if cfg.Policy, err = source.resolve(false); err != nil {
				return err
			}
			cfg.DecisionFiles = append(cfg.DecisionFiles, args...)
			return policycmd.Replay(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	formatFlag(cmd)
	source.register(cmd, "candidate policy file or directory, repeatable (default: policy.paths of --config)")
	cmd.Flags().StringArrayVar(&cfg.DecisionFiles, "decisions", nil, "decision log file, plain or gzip-compressed, repeatable")
	cmd.Flags().IntVar(&cfg.Examples, "examples", policycmd.DefaultExamples, "examples shown per group of records")
	cmd.Flags().BoolVar(&cfg.Strict, "strict", false, "stop with an error at the first malformed line")
	return cmd
}
