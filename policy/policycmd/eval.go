package policycmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// EvalConfig configures Eval.
type EvalConfig struct {
	// InputFile names a policy input document or a decision record, in
	// JSON. "-" reads Stdin.
	InputFile string
	// Stdin is read when InputFile is "-".
	Stdin io.Reader
	// Policy selects the policy files and data file.
	Policy policy.Config
	// Kind is the kind of decision, "" to take it from input.kind or from
	// the record's path.
	Kind string
	// Format is the form of the report.
	Format Format
	// FailOnDeny makes Eval return an *ExitError with ExitCodeFailed when
	// the policy denies.
	FailOnDeny bool
}

// EvalReport is the report of Eval, and its JSON form.
type EvalReport struct {
	// Kind is the kind of decision evaluated.
	Kind policy.Kind `json:"kind"`
	// Path is the decision-log path of the kind.
	Path string `json:"path"`
	// Allow and Reasons are the policy's decision.
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons"`
	// Result is the whole decision object that the policy returned.
	Result map[string]any `json:"result"`
	// Revision is the revision of the policy, as in decision records.
	Revision string `json:"revision"`
	// DecisionID is the decision_id of the record that the input came
	// from, "" for a bare input document.
	DecisionID string `json:"decision_id,omitempty"`
	// Recorded is the policy's decision in that record, when it has one.
	Recorded *Outcome `json:"recorded,omitempty"`
	// MaskedReads are the values that masking removed from the record's
	// input and that the policy reads: the decision may differ from one on
	// the whole input.
	MaskedReads []MaskedRead `json:"masked_reads,omitempty"`
}

// MaskedRead is a value that masking removed from a record and that the
// policy reads.
type MaskedRead struct {
	// Pointer is the JSON pointer in the record's erased or masked list.
	Pointer string `json:"pointer"`
	// Read is the input reference of the policy, such as
	// input.pdu.content.body, "" when the pointer is invalid.
	Read string `json:"read,omitempty"`
	// Location is the place in the policy that reads it, as file:row:col.
	Location string `json:"location,omitempty"`
}

// evalInput is the document that Eval evaluates.
type evalInput struct {
	input map[string]any
	// record is the decision record the input came from, nil for a bare
	// input document.
	record *decisionlog.Record
}

// Eval evaluates one decision of the policy and writes it with its reasons
// to w.
func Eval(ctx context.Context, cfg EvalConfig, w io.Writer) error {
	document, err := readEvalInput(cfg.InputFile, cfg.Stdin)
	if err != nil {
		return err
	}
	kind, err := evalKind(cfg.Kind, document)
	if err != nil {
		return err
	}
	engine, err := policy.New(ctx, cfg.Policy)
	if err != nil {
		return err
	}
	decision, err := engine.Decide(ctx, kind, document.input)
	if err != nil {
		// The gateway denies when the evaluation fails.
		return fmt.Errorf("%w; the gateway denies on this error", err)
	}

	report := &EvalReport{
		Kind:     kind,
		Path:     engine.Path(kind),
		Allow:    decision.Allow,
		Reasons:  decision.Reasons,
		Result:   decision.Result,
		Revision: engine.Revision(),
	}
	if rec := document.record; rec != nil {
		report.DecisionID = rec.DecisionID
		if recorded, skip := caseOfRecord(rec); skip == "" {
			report.Recorded = &recorded.recorded
		}
		report.MaskedReads = maskedReads(engine, slices.Concat(rec.Erased, rec.Masked))
	}

	if err := writeReport(w, cfg.Format, report, writeEvalPretty); err != nil {
		return err
	}
	if cfg.FailOnDeny && !decision.Allow {
		return failed("the policy denies the %s", kind)
	}
	return nil
}

// readEvalInput reads a policy input document or a decision record.
func readEvalInput(path string, stdin io.Reader) (evalInput, error) {
	var src []byte
	var err error
	name := path
	if path == "-" {
		name = "standard input"
		src, err = io.ReadAll(stdin)
	} else {
		src, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return evalInput{}, fmt.Errorf("input file %s does not exist", path)
	}
	if err != nil {
		return evalInput{}, fmt.Errorf("read input: %w", err)
	}

	object, err := decodeDocument(src)
	if err != nil {
		return evalInput{}, fmt.Errorf("input %s: %w", name, err)
	}
	if _, isRecord := object["decision_id"]; !isRecord {
		return evalInput{input: object}, nil
	}

	// A decision record: decode its fields, which the strict decoding has
	// already checked.
	decoder := json.NewDecoder(bytes.NewReader(src))
	decoder.UseNumber()
	var rec decisionlog.Record
	if err := decoder.Decode(&rec); err != nil {
		return evalInput{}, fmt.Errorf("input %s: invalid decision record: %w", name, err)
	}
	if rec.MaskError != "" {
		return evalInput{}, fmt.Errorf("decision record %s has no input: %s", rec.DecisionID, rec.MaskError)
	}
	if rec.Input == nil {
		return evalInput{}, fmt.Errorf("decision record %s has no input: the gateway refused the item before asking the policy, so there is nothing to evaluate", rec.DecisionID)
	}
	input, ok := rec.Input.(map[string]any)
	if !ok {
		return evalInput{}, fmt.Errorf("decision record %s: input is %s, expected an object", rec.DecisionID, policy.TypeName(rec.Input))
	}
	return evalInput{input: input, record: &rec}, nil
}

// evalKind returns the kind of decision from the --kind flag, input.kind and
// the record's path, which must agree where they are present.
func evalKind(flag string, document evalInput) (policy.Kind, error) {
	var kind policy.Kind
	source := ""
	agree := func(found policy.Kind, from string) error {
		if kind != "" && found != kind {
			return fmt.Errorf("%s is %s but %s is %s: use an input of the kind that you evaluate", source, kind, from, found)
		}
		kind, source = found, from
		return nil
	}

	if flag != "" {
		found, err := ParseKind(flag)
		if err != nil {
			return "", fmt.Errorf("invalid --kind: %w", err)
		}
		kind, source = found, "--kind"
	}
	if rec := document.record; rec != nil {
		found, ok := kindOfPath(rec.Path)
		if !ok {
			return "", fmt.Errorf("decision record %s: path %q names no bordergate decision", rec.DecisionID, rec.Path)
		}
		if err := agree(found, "the record's path"); err != nil {
			return "", err
		}
	}
	if value, present := document.input["kind"]; present {
		text, ok := value.(string)
		if !ok {
			return "", fmt.Errorf("input.kind is %s, expected request, pdu or edu", policy.TypeName(value))
		}
		found, err := ParseKind(text)
		if err != nil {
			return "", fmt.Errorf("invalid input.kind: %w", err)
		}
		if err := agree(found, "input.kind"); err != nil {
			return "", err
		}
	}
	if kind == "" {
		return "", errors.New("the input has no kind: add input.kind or pass --kind request, pdu or edu")
	}
	return kind, nil
}

// maskedReads returns the pointers that the policy reads.
func maskedReads(engine *policy.Engine, pointers []string) []MaskedRead {
	var reads []MaskedRead
	for _, pointer := range pointers {
		read, ok := engine.ReadMasked(pointer)
		if !ok {
			continue
		}
		masked := MaskedRead{Pointer: pointer}
		if read.Location != nil {
			masked.Read, masked.Location = read.String(), locationText(read.Location)
		}
		reads = append(reads, masked)
	}
	return reads
}

// locationText returns file:row:col of a policy location.
func locationText(location *ast.Location) string {
	return fmt.Sprintf("%s:%d:%d", location.File, location.Row, location.Col)
}

func writeEvalPretty(w io.Writer, report *EvalReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s decision: %s\n", report.Kind, verdict(report.Allow))
	for _, reason := range report.Reasons {
		fmt.Fprintf(&b, "  reason: %s\n", reason)
	}
	result, err := json.Marshal(report.Result)
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "result: %s\n", result)
	fmt.Fprintf(&b, "policy revision: %s\n", report.Revision)
	if report.DecisionID != "" {
		if report.Recorded == nil {
			fmt.Fprintf(&b, "recorded decision %s: none from the policy\n", report.DecisionID)
		} else {
			now := outcomeOf(policy.Decision{Allow: report.Allow, Reasons: report.Reasons})
			same := "the same"
			if added, removed := reasonChanges(report.Recorded.Reasons, now.Reasons); report.Recorded.Allow != now.Allow || len(added)+len(removed) > 0 {
				same = "different"
			}
			fmt.Fprintf(&b, "recorded decision %s: %s, %s\n", report.DecisionID, describeOutcome(*report.Recorded), same)
		}
	}
	for _, masked := range report.MaskedReads {
		fmt.Fprintf(&b, "masked: %s was removed from the record, and the policy reads it", masked.Pointer)
		if masked.Read != "" {
			fmt.Fprintf(&b, " as %s at %s", masked.Read, masked.Location)
		}
		b.WriteString(", so the decision on the whole input may differ\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}
