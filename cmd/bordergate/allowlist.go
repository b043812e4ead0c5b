package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/bordergate/bordergate/gateway/admin"
)

func newAllowlistCommand() *cobra.Command {
	var opts admin.ClientOptions
	cmd := &cobra.Command{
		Use:   "allowlist",
		Short: "List and change the allow-list of a running gateway",
		Long: `List and change the allow-list of a running gateway through its admin API.

Entries added here join the gateway's "api" source, which persists in its
state directory and wins over the allow-list file for the same server name.
Imported lists replace the source "import:NAME" as a whole.`,
	}
	flags := cmd.PersistentFlags()
	flags.StringVar(&opts.URL, "admin-url", admin.DefaultURL, "URL of the gateway's admin listener")
	flags.StringVar(&opts.TokenFile, "token-file", "", "file whose first line is the admin bearer token")
	flags.StringVar(&opts.CAFile, "ca-file", "", "PEM bundle that an https admin listener's certificate is verified against")
	flags.StringVar(&opts.CertFile, "cert-file", "", "PEM client certificate for an admin listener with mutual TLS")
	flags.StringVar(&opts.KeyFile, "key-file", "", "PEM private key of --cert-file")
	flags.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "time limit of each request to the admin API")
	cmd.AddCommand(newAllowlistListCommand(&opts), newAllowlistAddCommand(&opts),
		newAllowlistRemoveCommand(&opts), newAllowlistImportCommand(&opts))
	return cmd
}

func newAllowlistListCommand(opts *admin.ClientOptions) *cobra.Command {
	var source, format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print every entry, its source and status, and the allow-list revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown --format %q (expected table or json)", format)
			}
			client, err := admin.NewClient(*opts)
			if err != nil {
				return err
			}
			list, err := client.List(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				encoder := json.NewEncoder(cmd.OutOrStdout())
				encoder.SetIndent("", "  ")
				return encoder.Encode(list)
			}
			return admin.WriteListTable(cmd.OutOrStdout(), list, source)
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "list only the entries of this source, such as api or import:bans (table output)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

// entryFlags are the fields of an entry given on the command line.
type entryFlags struct {
	deny, requireMTLS, replace          bool
	administration, note, expires, addr string
	endpoints, eventTypes, revoked      []string
	labels, pinned                      []string
	fromFile                            string
}

func newAllowlistAddCommand(opts *admin.ClientOptions) *cobra.Command {
	var f entryFlags
	cmd := &cobra.Command{
		Use:   "add SERVER_NAME",
		Short: "Add an entry to the gateway's api source",
		Long: `Add an allow or deny entry for SERVER_NAME (a server name or a glob such as
"*.example.org") to the gateway's api source. The gateway records who added it
and when. With --replace, an api entry of the same name is replaced; without
it, an existing entry with other fields is an error. --from-file reads the
whole entry, in the allow-list file's form, from a YAML or JSON file.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entry, name, err := f.build(cmd, args)
			if err != nil {
				return err
			}
			client, err := admin.NewClient(*opts)
			if err != nil {
				return err
			}
			result, err := client.Add(cmd.Context(), entry, name, f.replace)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s in source %s, changed by %s\nrevision: %s\n",
				actionName(result.Entry.Deny), result.Entry.ServerName, result.Entry.Source, result.Entry.ChangedBy, result.Revision)
			return nil
		},
	}
	flags := cmd.Flags()
	flags.BoolVar(&f.deny, "deny", false, "make a deny entry, which rejects the server whatever any allow entry says")
	flags.StringVar(&f.note, "note", "", "free text kept with the entry, such as why it was added")
	flags.StringVar(&f.administration, "administration", "", "the administration that runs the server")
	flags.StringSliceVar(&f.endpoints, "endpoints", nil, `endpoint IDs the server may call, or "*" (allow entries; default "*")`)
	flags.StringSliceVar(&f.eventTypes, "event-types", nil, "event types that PDUs involving the server may have")
	flags.StringVar(&f.expires, "expires", "", "RFC 3339 time from which the entry no longer applies")
	flags.StringArrayVar(&f.labels, "label", nil, "label NAME=VALUE for policy rules (repeatable)")
	flags.StringArrayVar(&f.pinned, "pinned-key", nil, "pinned key KEY_ID=BASE64 (repeatable)")
	flags.StringSliceVar(&f.revoked, "revoked-key", nil, "revoked key IDs or base64 public keys")
	flags.StringVar(&f.addr, "address", "", "host:port to connect to instead of server discovery")
	flags.BoolVar(&f.requireMTLS, "require-mtls", false, "require the server to present a client certificate")
	flags.BoolVar(&f.replace, "replace", false, "replace an api entry of the same server name")
	flags.StringVar(&f.fromFile, "from-file", "", "read the entry from this YAML or JSON file instead of the flags")
	return cmd
}

// build returns the entry as JSON and its server name.
func (f *entryFlags) build(cmd *cobra.Command, args []string) (json.RawMessage, string, error) {
	if f.fromFile != "" {
		if len(args) > 0 || countSet(cmd, entryFlagNames...) > 0 {
			return nil, "", fmt.Errorf("--from-file takes the whole entry: give no SERVER_NAME and no entry flags")
		}
		return entryFromFile(f.fromFile)
	}
	if len(args) != 1 {
		return nil, "", fmt.Errorf("missing SERVER_NAME (or --from-file)")
	}
	entry := map[string]any{"server_name": args[0]}
	set := func(name string, value any) {
		entry[name] = value
	}
	if f.deny {
		set("deny", true)
	} else if len(f.endpoints) == 0 {
		set("endpoints", []string{"*"})
	}
	if len(f.endpoints) > 0 {
		set("endpoints", f.endpoints)
	}
	for name, value := range map[string]string{"note": f.note, "administration": f.administration, "expires": f.expires, "address": f.addr} {
		if value != "" {
			set(name, value)
		}
	}
	if f.eventTypes != nil {
		set("event_types", f.eventTypes)
	}
	if f.revoked != nil {
		set("revoked_keys", f.revoked)
	}
	if f.requireMTLS {
		set("require_mtls", true)
	}
	for flag, pairs := range map[string][]string{"labels": f.labels, "pinned_keys": f.pinned} {
		if len(pairs) == 0 {
			continue
		}
		values, err := splitPairs(flag, pairs)
		if err != nil {
			return nil, "", err
		}
		set(flag, values)
	}
	data, err := json.Marshal(entry)
	return data, args[0], err
}

// entryFlagNames are the flags of add that set a field of the entry.
var entryFlagNames = []string{"deny", "note", "administration", "endpoints", "event-types", "expires",
	"label", "pinned-key", "revoked-key", "address", "require-mtls"}

func countSet(cmd *cobra.Command, names ...string) int {
	n := 0
	for _, name := range names {
		if flag := cmd.Flags().Lookup(name); flag != nil && flag.Changed {
			n++
		}
	}
	return n
}

// splitPairs parses NAME=VALUE items.
func splitPairs(field string, pairs []string) (map[string]string, error) {
	out := make(map[string]string, len(pairs))
	for _, pair := range pairs {
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not NAME=VALUE", field, pair)
		}
		out[name] = value
	}
	return out, nil
}

// entryFromFile reads one entry from a YAML or JSON file and returns it as
// JSON with its server name.
func entryFromFile(path string) (json.RawMessage, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var entry map[string]any
	if err := yaml.Unmarshal(data, &entry); err != nil {
		return nil, "", fmt.Errorf("%s: invalid entry (expected a YAML or JSON mapping): %w", path, err)
	}
	name, _ := entry["server_name"].(string)
	encoded, err := json.Marshal(entry)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return encoded, name, nil
}

func actionName(deny bool) string {
	if deny {
		return "deny entry for"
	}
	return "allow entry for"
}

func newAllowlistRemoveCommand(opts *admin.ClientOptions) *cobra.Command {
	var importName string
	cmd := &cobra.Command{
		Use:   "remove SERVER_NAME | remove --import NAME",
		Short: "Remove an entry of the api source, or an imported list",
		Long: `Remove the api source's entry for SERVER_NAME, or with --import the whole
imported list import:NAME. Entries of the allow-list file and of signed lists
are not changed here: edit the file, or add a deny entry.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (importName == "") == (len(args) == 0) {
				return fmt.Errorf("give either SERVER_NAME or --import NAME")
			}
			client, err := admin.NewClient(*opts)
			if err != nil {
				return err
			}
			if importName != "" {
				result, err := client.DeleteImport(cmd.Context(), importName)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\nrevision: %s\n", result.Source, result.Revision)
				return nil
			}
			result, err := client.Remove(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s %s from source %s\nrevision: %s\n",
				actionName(result.Entry.Deny), result.Entry.ServerName, result.Entry.Source, result.Revision)
			return nil
		},
	}
	cmd.Flags().StringVar(&importName, "import", "", "remove the imported list import:NAME instead of one entry")
	return cmd
}

func newAllowlistImportCommand(opts *admin.ClientOptions) *cobra.Command {
	var name, format string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import --name NAME --format moderation|allowlist FILE",
		Short: "Replace the imported list import:NAME with the entries of FILE",
		Long: `Replace the imported list import:NAME with the entries of FILE, as a whole.

--format moderation reads a Matrix moderation policy list: the JSON state of
its room, as an array of events or the federation /state response. Each
m.policy.rule.server rule with recommendation m.ban becomes a deny entry with
the rule's reason as note; other rules are reported and skipped.
--format allowlist reads a file in the allow-list file's format.
--dry-run reports what would be imported without changing anything.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			client, err := admin.NewClient(*opts)
			if err != nil {
				return err
			}
			result, err := client.Import(cmd.Context(), name, format, data, dryRun)
			if err != nil {
				return err
			}
			return admin.WriteImportReport(cmd.OutOrStdout(), result)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the imported list; its entries form the source import:NAME (required)")
	cmd.Flags().StringVar(&format, "format", admin.FormatModeration, "format of FILE: moderation or allowlist")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be imported, and change nothing")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}
