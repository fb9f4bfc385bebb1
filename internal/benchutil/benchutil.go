// Package benchutil holds what psync's benchmarks (bench_test.go) and the
// bench/compare program share, so that both measure the same thing in the
// same way: the command they feed, a snapshot and a loader that cost
// nothing, a loopback TCP server, and the in-process set-ups of the stream,
// the full resync and the partial resync.
package benchutil

import (
	"log/slog"
	"strings"

	"github.com/psyncio/psync"
)

// quiet is the logger of the masters and replicas built here.
var quiet = slog.New(slog.DiscardHandler)

// SetCommand returns the 144-byte SET of the baselines, RESP-encoded: key
// key:000000123456 and a 100-byte value. Each call returns a new slice.
func SetCommand() []byte {
	return psync.AppendCommandString(nil, "SET", "key:000000123456", strings.Repeat("v", 100))
}

// SetBatch returns n SetCommands back to back, to be fed in one Master.Feed.
func SetBatch(n int) []byte {
	cmd := SetCommand()
	batch := make([]byte, 0, n*len(cmd))
	for range n {
		batch = append(batch, cmd...)
	}
	return batch
}

// NoopApplier is a psync.Applier that applies nothing: a replica with it
// measures the stream and its parsing alone. It is safe for concurrent use.
type NoopApplier struct{}

// Apply does nothing.
func (NoopApplier) Apply(psync.Command) error { return nil }
