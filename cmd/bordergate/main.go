// Command bordergate is a Matrix federation border gateway: it stands at an
// administration's federation boundary and decides, request by request and
// event by event, what may cross.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bordergate:", err)
		os.Exit(1)
	}
}
