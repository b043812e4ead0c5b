package policycmd

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bordergate/bordergate/policy"
)

// writeReplayPretty writes the replay report for people.
func writeReplayPretty(w io.Writer, report *ReplayReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Replayed %d of %d decision records against the policy in %s (revision %s).\n",
		report.Totals.Replayed, report.Records, strings.Join(report.Policy.Paths, ", "), shortRevision(report.Policy.Revision))
	if len(report.RecordedRevisions) > 0 {
		parts := make([]string, len(report.RecordedRevisions))
		for i, revision := range report.RecordedRevisions {
			parts[i] = fmt.Sprintf("%s (%d)", shortRevision(revision.Revision), revision.Count)
		}
		fmt.Fprintf(&b, "Recorded with policy revisions %s.\n", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	writeCountsTable(&b, report)

	writeGroup(&b, "Allow -> deny", report.AllowToDeny, describeFlip)
	writeGroup(&b, "Deny -> allow", report.DenyToAllow, describeFlip)
	writeReasonGroups(&b, "Reasons added", report.ReasonsAdded)
	writeReasonGroups(&b, "Reasons removed", report.ReasonsRemoved)
	writeGroup(&b, "Evaluation errors (the gateway denies on them)", report.Errors, func(e Example) string { return e.Error })

	if report.Masked.Count > 0 {
		fmt.Fprintf(&b, "\nNot replayed, masked where the policy reads the input: %d\n", report.Masked.Count)
		for _, group := range report.Masked.Pointers {
			fmt.Fprintf(&b, "  %d  %s", group.Count, group.Pointer)
			if group.Read != "" {
				fmt.Fprintf(&b, ", read as %s at %s", group.Read, group.Location)
			}
			b.WriteString("\n")
			writeExamples(&b, group.Examples, group.Count, nil)
		}
	}
	if report.Skipped.Count > 0 {
		fmt.Fprintf(&b, "\nSkipped, no policy decision to replay: %d\n", report.Skipped.Count)
		for _, group := range report.Skipped.Reasons {
			fmt.Fprintf(&b, "  %d  %s: %s\n", group.Count, group.Reason, group.Description)
			writeExamples(&b, group.Examples, group.Count, nil)
		}
	}
	if report.Malformed.Count > 0 {
		fmt.Fprintf(&b, "\nMalformed lines: %d\n", report.Malformed.Count)
		for _, line := range report.Malformed.Lines {
			fmt.Fprintf(&b, "  %s:%d: %s\n", line.File, line.Line, line.Error)
		}
		if more := report.Malformed.Count - len(report.Malformed.Lines); more > 0 {
			fmt.Fprintf(&b, "  and %d more\n", more)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCountsTable writes the counts by kind.
func writeCountsTable(b *strings.Builder, report *ReplayReport) {
	table := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(table, "kind\treplayed\tunchanged\tallow->deny\tdeny->allow\treasons changed\terrors\tmasked\tskipped\t")
	row := func(name string, c KindCounts) {
		fmt.Fprintf(table, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name,
			c.Replayed, c.Unchanged, c.AllowToDeny, c.DenyToAllow, c.ReasonsChanged, c.Errors, c.Masked, c.Skipped)
	}
	for _, kind := range []policy.Kind{policy.KindRequest, policy.KindPDU, policy.KindEDU} {
		row(string(kind), *report.Kinds[kind])
	}
	row("total", report.Totals)
	table.Flush()
}

func writeGroup(b *strings.Builder, title string, group Group, detail func(Example) string) {
	if group.Count == 0 {
		fmt.Fprintf(b, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(b, "\n%s: %d\n", title, group.Count)
	writeExamples(b, group.Examples, group.Count, detail)
}

func writeReasonGroups(b *strings.Builder, title string, groups []ReasonGroup) {
	if len(groups) == 0 {
		fmt.Fprintf(b, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(b, "\n%s:\n", title)
	for _, group := range groups {
		var kinds []string
		for _, kind := range []policy.Kind{policy.KindRequest, policy.KindPDU, policy.KindEDU} {
			if n := group.Kinds[kind]; n > 0 {
				kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
			}
		}
		fmt.Fprintf(b, "  %d  %s (%s)\n", group.Count, group.Reason, strings.Join(kinds, ", "))
		writeExamples(b, group.Examples, group.Count, nil)
	}
}

// writeExamples writes one line per example, then how many records have
// none.
func writeExamples(b *strings.Builder, examples []Example, count int, detail func(Example) string) {
	for _, example := range examples {
		kind := string(example.Kind)
		if kind == "" {
			kind = "unknown"
		}
		fmt.Fprintf(b, "      %s %s %s:%d", kind, example.DecisionID, example.File, example.Line)
		for _, field := range [][2]string{
			{"origin", example.Origin}, {"endpoint", example.Endpoint}, {"event", example.EventID},
			{"type", example.EventType}, {"edu", example.EDUType},
		} {
			if field[1] != "" {
				fmt.Fprintf(b, " %s=%s", field[0], field[1])
			}
		}
		if detail != nil {
			if text := detail(example); text != "" {
				b.WriteString(": " + text)
			}
		}
		b.WriteString("\n")
	}
	if more := count - len(examples); more > 0 {
		fmt.Fprintf(b, "      and %d more\n", more)
	}
}

// describeFlip shows the recorded and the replayed decision.
func describeFlip(example Example) string {
	if example.Recorded == nil {
		return ""
	}
	now := "evaluation failed: " + example.Error
	if example.Replayed != nil {
		now = describeOutcome(*example.Replayed)
	}
	return fmt.Sprintf("was %s, now %s", describeOutcome(*example.Recorded), now)
}

// shortRevision returns the first 12 hex digits of a revision, as short
// commit hashes are shown.
func shortRevision(revision string) string {
	if revision == "" {
		return "unknown"
	}
	return revision[:min(len(revision), 12)]
}
