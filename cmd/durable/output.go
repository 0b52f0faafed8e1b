package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/durable-go/durable/httpapi"
)

// printJSON prints JSON indented, for people and jq alike.
func printJSON(w io.Writer, b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("the node answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printTable prints rows as aligned columns, the first row as the header.
func printTable(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		for i, cell := range row {
			row[i] = oneLine(cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// printFields prints name/value pairs, one per line.
func printFields(w io.Writer, fields [][2]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f[0], oneLine(f[1]))
	}
	_ = tw.Flush()
}

func printStatus(w io.Writer, st *httpapi.StatusPayload) {
	fields := [][2]string{
		{"ID", st.InstanceID},
		{"NAME", st.Name},
		{"STATUS", st.RuntimeStatus},
		{"CREATED", st.CreatedTime},
		{"UPDATED", st.LastUpdatedTime},
		{"INPUT", truncate(compact(st.Input), 200)},
		{"OUTPUT", truncate(compact(st.Output), 200)},
	}
	switch {
	case st.VersionNotRegistered:
		fields = append(fields, [2]string{"VERSION", fmt.Sprintf("%q: not registered on the serving node, the instance waits for a node that has it", st.Version)})
	case st.Version != "":
		fields = append(fields, [2]string{"VERSION", st.Version})
	}
	if cs := compact(st.CustomStatus); cs != "null" {
		fields = append(fields, [2]string{"CUSTOM STATUS", truncate(cs, 200)})
	}
	if f := st.FailureDetails; f != nil {
		fields = append(fields, [2]string{"FAILURE", truncate(f.ErrorType+": "+f.ErrorMessage, 200)})
	}
	printFields(w, fields)
}

// compact renders a JSON value on one line ("null" when absent).
func compact(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// truncate shortens s to n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
