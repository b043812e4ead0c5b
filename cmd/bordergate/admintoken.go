package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bordergate/bordergate/gateway/admin"
)

func newAdminCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage access to the admin listener",
	}
	cmd.AddCommand(newAdminTokenCommand())
	return cmd
}

func newAdminTokenCommand() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "token --name NAME --out FILE",
		Short: "Create an admin bearer token",
		Long: `Create a random bearer token, write it to FILE (mode 0600, never over an
existing file) for the client's --token-file, and print the item to add to the
gateway's admin.token_file. The gateway keeps only the token's SHA-256.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return err
			}
			token := base64.RawURLEncoding.EncodeToString(raw)
			if _, err := admin.NewAuthenticator([]admin.Token{{Name: name, SHA256: admin.HashToken(token)}}, false); err != nil {
				return err
			}
			file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(file, token); err != nil {
				file.Close()
				return err
			}
			if err := file.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "  - name: %s\n    sha256: %s\n", name, admin.HashToken(token))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the principal the token stands for (required)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the token to (required)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
