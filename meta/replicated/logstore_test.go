package replicated_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta/replicated"
)

// The log store keeps entries, bounds and stable keys across a reopen,
// deletes heads and tails, and answers raft's "not found" for a stable key
// never set.
func TestLogStore(t *testing.T) {
	dir := t.TempDir()
	s, err := replicated.OpenLogStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := s.FirstIndex(); f != 0 {
		t.Fatalf("empty store first index %d", f)
	}
	at := time.Unix(1700000000, 5)
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/10, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: at})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("unset stable key: %v, want \"not found\"", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 5); err != nil { // compaction
		t.Fatal(err)
	}
	if err := s.DeleteRange(18, 20); err != nil { // conflicting tail
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = replicated.OpenLogStore(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != 6 || l != 17 {
		t.Fatalf("bounds %d..%d, want 6..17", f, l)
	}
	var got raft.Log
	if err := s.GetLog(5, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	if err := s.GetLog(12, &got); err != nil {
		t.Fatal(err)
	}
	if got.Index != 12 || got.Term != 2 || got.Type != raft.LogCommand || !bytes.Equal(got.Data, []byte{12}) || string(got.Extensions) != "x" || !got.AppendedAt.Equal(at) {
		t.Fatalf("entry 12 read back as %+v", got)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("stable key: %d, %v", v, err)
	}
}
