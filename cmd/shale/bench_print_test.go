package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// printBenchRun's JSON is the result's own fields plus "cpu"; its text is
// the CPU line, the table and where the run was kept.
func TestPrintBenchRun(t *testing.T) {
	res := struct {
		RebalanceS float64 `json:"rebalance_s"`
		Moved      int64   `json:"bytes_moved"`
	}{12.5, 7}
	var b bytes.Buffer
	if err := printBenchRun(&b, true, res, nil, false, ""); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if got["rebalance_s"] != 12.5 || got["bytes_moved"] != 7.0 || !strings.Contains(got["cpu"].(string), "logical CPUs") {
		t.Fatalf("JSON %v", got)
	}
	b.Reset()
	table := func(w io.Writer) error { _, err := io.WriteString(w, "THE TABLE\n"); return err }
	if err := printBenchRun(&b, false, res, table, true, "/tmp/run"); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.HasPrefix(s, "cpu: ") || !strings.Contains(s, "THE TABLE\n") || !strings.HasSuffix(s, "kept: /tmp/run\n") {
		t.Fatalf("text:\n%s", s)
	}
}
