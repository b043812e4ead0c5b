package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bordergate/bordergate/gateway/store"
)

// WriteListTable writes the listing as a table: the revision, one line per
// entry, the sources and the signed lists. Only entries of source are
// listed when it is not empty.
func WriteListTable(w io.Writer, list ListResponse, source string) error {
	fmt.Fprintf(w, "revision: %s\n\n", list.Revision)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER_NAME\tACTION\tSOURCE\tSTATUS\tENDPOINTS\tEXPIRES\tCHANGED_BY\tCHANGED_AT\tNOTE")
	for _, e := range list.Entries {
		if source != "" && e.Source != source {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ServerName, action(e.Entry), e.Source, status(e),
			dash(strings.Join(e.Endpoints, ",")), formatTime(e.Expires), dash(e.ChangedBy), formatTime(e.ChangedAt), dash(e.Note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tENTRIES\tUPDATED_BY\tUPDATED_AT")
	for _, s := range list.Sources {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Name, s.EntryCount, dash(s.UpdatedBy), s.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeSignedLists(w, list.SignedLists)
}

// writeSignedLists writes the table of signed lists, when there are any.
func writeSignedLists(w io.Writer, raw json.RawMessage) error {
	var lists []struct {
		Name      string     `json:"name"`
		State     string     `json:"state"`
		Issuer    string     `json:"issuer"`
		Expires   *time.Time `json:"expires"`
		LastError string     `json:"last_error"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &lists) != nil || len(lists) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNED_LIST\tSTATE\tISSUER\tEXPIRES\tLAST_ERROR")
	for _, l := range lists {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, l.State, dash(l.Issuer), formatTime(l.Expires), dash(l.LastError))
	}
	return tw.Flush()
}

func action(e store.Entry) string {
	if e.Deny {
		return "deny"
	}
	return "allow"
}

func status(e store.ListedEntry) string {
	if e.ShadowedBy != "" {
		return "shadowed by " + e.ShadowedBy
	}
	if e.Expires != nil && !time.Now().Before(*e.Expires) {
		return "expired"
	}
	return "in force"
}

func formatTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteImportReport writes what an import did: the entry count, the
// revision, and each skipped rule and notice.
func WriteImportReport(w io.Writer, r ImportResponse) error {
	verb := "imported"
	if r.DryRun {
		verb = "would import (dry run)"
	}
	fmt.Fprintf(w, "%s %d entries into %s\n", verb, r.EntryCount, r.Source)
	if r.RemovedRules > 0 || r.OtherEvents > 0 {
		fmt.Fprintf(w, "%d removed rules and %d other events ignored\n", r.RemovedRules, r.OtherEvents)
	}
	for _, skipped := range r.Skipped {
		fmt.Fprintf(w, "skipped %s\n", skipped)
	}
	for _, notice := range r.Notices {
		fmt.Fprintf(w, "notice %s\n", notice)
	}
	_, err := fmt.Fprintf(w, "revision: %s\n", r.Revision)
	return err
}
