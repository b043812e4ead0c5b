// Package e2e contains end-to-end tests on real Dendrite homeservers, with
// and without bordergate between them. The harness is package testfed.
//
// The tests need root, to create a network namespace, and the ip command.
// Without them every test is skipped. The first run installs Dendrite into
// the user cache directory, which needs the Go module proxy.
//
// Each test keeps its configuration, databases and logs in a temporary
// directory that is removed unless the test fails. Set BORDERGATE_E2E_DIR to
// keep them under that directory instead. The tests that run bordergate
// build ./cmd/bordergate unless BORDERGATE_E2E_BIN names a binary to test.
//
// Run the tests with -count=1. The test binary does not import the gateway
// package, so go test would otherwise reuse a cached result after the gateway
// changed.
package e2e
