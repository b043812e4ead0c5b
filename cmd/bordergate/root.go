package main

import (
	"github.com/spf13/cobra"
)

// version is the bordergate release, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "bordergate",
		Short:         "Matrix federation border gateway",
		Long:          "bordergate authenticates, verifies and decides every Matrix federation request, PDU and EDU that crosses an administration's boundary, and records each decision.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newCheckCommand(), newEventCommand(), newCertsCommand(), newPolicyCommand(),
		newAuditCommand(), newAllowlistCommand(), newAdminCommand())
	return root
}
