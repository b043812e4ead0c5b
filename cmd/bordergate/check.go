package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway"
)

func newCheckCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Check a configuration without starting the gateway",
		Long: `Load the configuration in FILE and everything it names (allow-list, rooms
seed file, policy, certificates and CA bundles) as serve would, without
listening, opening the decision log or writing state. Exits non-zero with
the first problem found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := gateway.LoadConfig(configPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.DiscardHandler)
			if err := gateway.Check(cmd.Context(), cfg, log); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: configuration is valid\n", configPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "path of the YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
