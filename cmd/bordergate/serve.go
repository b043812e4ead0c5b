package main

import (
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway"
)

func newServeCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway",
		Long: `Run the gateway with the YAML configuration in FILE until SIGINT or SIGTERM.
A configuration error stops it before it listens.

The policy and allow-list files are reloaded when they change, and policy
bundles are fetched again every poll interval. SIGHUP reloads them at once,
rereads the certificate files and the admin token file, fetches the signed
lists again and reopens the decision log file (after log rotation). A policy
or allow-list that fails to load is rejected whole and the one in force stays.

The admin listener (admin.listen, default 127.0.0.1:9448) serves /healthz,
/readyz, /metrics and the allow-list API that "bordergate allowlist" calls.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := gateway.LoadConfig(configPath)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			g, err := gateway.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer g.Close()
			go g.ReloadOnHangup(ctx)
			return g.Serve(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "path of the YAML configuration file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newLogger(cfg gateway.LogConfig) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cfg.Level))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
