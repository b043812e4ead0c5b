// Package bench contains the benchmark suite of the gateway's critical path:
// per-PDU event verification against ed25519.Verify alone and against
// gomatrixserverlib, a /send transaction through a running gateway against
// a plain httputil.ReverseProxy, policy decisions and allow-list lookups.
//
// The package has no code of its own. Run the suite with
//
//	go test -run '^$' -bench . -benchtime 1s -count 6 ./gateway/bench/ | tee bench.txt
//
// and summarise bench.txt with benchstat. docs/benchmarks.md describes the
// method and records the figures.
package bench
