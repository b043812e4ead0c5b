package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/keys"
)

func newEventCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "event",
		Short: "Work with Matrix events (PDUs)",
	}
	cmd.AddCommand(newEventInspectCommand())
	return cmd
}

func newEventInspectCommand() *cobra.Command {
	var roomVersion, keysPath string
	cmd := &cobra.Command{
		Use:   "inspect [FILE]",
		Short: "Verify one PDU and print what the gateway computes for it",
		Long: `Read one PDU in federation format from FILE, or standard input when FILE is
absent or "-", and print JSON with its canonical form, content hash status,
event ID and the status of each signature.

Signatures are checked with the keys in --keys: a /_matrix/key/v2/server
response, or a directory of such responses (*.json). Without --keys every
signature is reported as unknown_key.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(cmd, args)
			if err != nil {
				return err
			}
			var lookup keys.Lookup = keys.NewStaticLookup(nil)
			if keysPath != "" {
				if lookup, err = keys.LoadKeyFiles(keysPath); err != nil {
					return err
				}
			}
			report, err := events.Inspect(cmd.Context(), data, roomVersion, lookup)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(report)
		},
	}
	cmd.Flags().StringVar(&roomVersion, "room-version", "", "room version of the event's room, 1 to 12 (required)")
	cmd.Flags().StringVar(&keysPath, "keys", "", "key server response file, or directory of them")
	_ = cmd.MarkFlagRequired("room-version")
	return cmd
}

func readInput(cmd *cobra.Command, args []string) ([]byte, error) {
	if len(args) == 0 || args[0] == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(args[0])
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("event file %s does not exist", args[0])
	}
	if err != nil {
		return nil, fmt.Errorf("read event file: %w", err)
	}
	return data, nil
}
