// Command bordergate is a Matrix federation border gateway: it stands at an
// administration's federation boundary and decides, request by request and
// event by event, what may cross.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/bordergate/bordergate/policy/policycmd"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bordergate:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode returns the exit status for err: the one a command chose, else
// 1.
func exitCode(err error) int {
	var exitErr *policycmd.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	return 1
}
