package meta

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"
)

// FuzzDecodeCommand: a raft log entry of any bytes decodes to a command or
// ErrCorrupt, never a panic; a command that validates applies to a store
// (with a node registered, so membership commands reach their code) with
// a result or an error, never a panic — every replica must reject a bad
// command alike rather than crash.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []Command{
		{Op: OpSetWeight, Node: "n1", Weight: 1 << 40},
		{Op: OpSetWeight, Node: "nope", Weight: 5},
		{Op: OpAdmin, Node: "n1", Action: ActionDrain},
		{Op: OpCreateBucket, Bucket: "b"},
		{Op: OpHeartbeat, Report: &NodeReport{ID: "n2", Damaged: true}},
	} {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{commandFormat, '{', '}'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil || c.Validate() != nil {
			return
		}
		s, err := Open(Config{Dir: "/db", FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Apply(1, Command{Op: OpHeartbeat, Report: &NodeReport{ID: "n1", Addr: "127.0.0.1:1"}}); err != nil {
			t.Fatal(err)
		}
		_, _ = s.Apply(2, c)
	})
}
