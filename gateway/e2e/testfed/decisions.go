package testfed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// decisionPollInterval is how often the decision log is re-read while
// waiting for a record.
const decisionPollInterval = 100 * time.Millisecond

// Decisions returns every record of the decision log of fed.Gateway so
// far, rotated files included, in chain order. A missing file returns no
// records.
func (fed *Federation) Decisions() ([]decisionlog.Record, error) {
	if fed.GatewayLog == "" {
		return nil, errors.New("read decisions: the federation runs without the gateway")
	}
	return readDecisions(fed.GatewayLog)
}

// WaitForDecision polls the decision log of fed.Gateway until a record
// matches and returns the first match. Set a deadline on ctx.
func (fed *Federation) WaitForDecision(ctx context.Context, match func(decisionlog.Record) bool) (decisionlog.Record, error) {
	if fed.GatewayLog == "" {
		return decisionlog.Record{}, errors.New("wait for decision: the federation runs without the gateway")
	}
	return waitForDecision(ctx, fed.GatewayLog, match)
}

// Decisions returns every record of the gateway's decision log so far,
// rotated files included (see [DecisionLogFiles]), in chain order. A
// missing file returns no records.
func (gw *Gateway) Decisions() ([]decisionlog.Record, error) {
	return readDecisions(gw.DecisionLog)
}

// WaitForDecision polls the gateway's decision log until a record matches
// and returns the first match. Set a deadline on ctx.
func (gw *Gateway) WaitForDecision(ctx context.Context, match func(decisionlog.Record) bool) (decisionlog.Record, error) {
	return waitForDecision(ctx, gw.DecisionLog, match)
}

func waitForDecision(ctx context.Context, path string, match func(decisionlog.Record) bool) (decisionlog.Record, error) {
	ticker := time.NewTicker(decisionPollInterval)
	defer ticker.Stop()
	for {
		records, err := readDecisions(path)
		if err != nil {
			return decisionlog.Record{}, err
		}
		for _, rec := range records {
			if match(rec) {
				return rec, nil
			}
		}
		select {
		case <-ctx.Done():
			return decisionlog.Record{}, fmt.Errorf("wait for decision record in %s (%d records): %w",
				path, len(records), ctx.Err())
		case <-ticker.C:
		}
	}
}

// FollowDecisions calls fn for every record appended to the decision log at
// path, in file order, starting with those already there, until ctx ends or
// fn returns an error. It returns nil when ctx ends. A line still being
// written is read once complete.
func FollowDecisions(ctx context.Context, path string, fn func(decisionlog.Record) error) error {
	ticker := time.NewTicker(decisionPollInterval)
	defer ticker.Stop()
	var offset int64
	var pending []byte
	for {
		chunk, err := readFrom(path, offset)
		if err != nil {
			return err
		}
		offset += int64(len(chunk))
		pending = append(pending, chunk...)

		// Only complete lines are decoded. The rest waits for more data.
		if end := bytes.LastIndexByte(pending, '\n'); end >= 0 {
			complete := pending[:end+1]
			pending = append([]byte(nil), pending[end+1:]...)
			err := decisionlog.Scan(bytes.NewReader(complete), func(_ int, rec decisionlog.Record) error {
				return fn(rec)
			})
			if err != nil {
				return err
			}
		}

		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// readFrom returns the bytes of path after offset. A missing file has none.
func readFrom(path string, offset int64) ([]byte, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}

// DecisionKind returns the kind of decision from the record's policy path:
// "pdu" for "bordergate/pdu/decision". Other paths are returned whole.
func DecisionKind(rec decisionlog.Record) string {
	parts := strings.Split(rec.Path, "/")
	if len(parts) == 3 && parts[0] == "bordergate" {
		return parts[1]
	}
	return rec.Path
}

// DecisionReasons returns result.reasons of the record, when the policy
// result is an object with a list of strings there.
func DecisionReasons(rec decisionlog.Record) []string {
	result, ok := rec.Result.(map[string]any)
	if !ok {
		return nil
	}
	list, _ := result["reasons"].([]any)
	reasons := make([]string, 0, len(list))
	for _, item := range list {
		if s, ok := item.(string); ok {
			reasons = append(reasons, s)
		}
	}
	return reasons
}

// FormatDecision renders a record as one line for people: time, kind,
// allow or deny, action, then the Matrix identifiers, the reasons and the
// pipeline error when present.
func FormatDecision(rec decisionlog.Record) string {
	verdict := "deny"
	if rec.Allow {
		verdict = "allow"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-8s %-5s %-9s", rec.Timestamp.Local().Format("15:04:05.000"), DecisionKind(rec), verdict, rec.Action)
	if m := rec.Matrix; m != nil {
		writeField(&b, "origin", m.Origin)
		writeField(&b, "endpoint", m.Endpoint)
		writeField(&b, "txn", m.TxnID)
		writeField(&b, "room", m.RoomID)
		writeField(&b, "event", m.EventID)
		writeField(&b, "type", m.EventType)
		writeField(&b, "edu", m.EDUType)
	}
	if rec.Status != 0 {
		fmt.Fprintf(&b, " status=%d", rec.Status)
	}
	if reasons := DecisionReasons(rec); len(reasons) > 0 {
		fmt.Fprintf(&b, " reasons=%q", strings.Join(reasons, "; "))
	}
	writeField(&b, "error", rec.Error)
	return b.String()
}

func writeField(b *strings.Builder, name, value string) {
	if value != "" {
		fmt.Fprintf(b, " %s=%s", name, value)
	}
}
