package psync_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// batchRecorder is a BatchApplier that checks psync's batch bracket: Apply
// in a batch only after BeginBatch, no nested batches, and a batch's offsets
// published only after its EndBatch.
type batchRecorder struct {
	*psynctest.Store
	r *psync.Replica

	mu         sync.Mutex
	in         bool
	batches    int
	maxBytes   int
	cur        int
	lastInside int64 // offset of the last command applied in the open batch
	errs       []string
}

func (b *batchRecorder) fail(format string, args ...any) {
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

func (b *batchRecorder) BeginBatch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.in {
		b.fail("BeginBatch inside a batch")
	}
	b.in, b.cur = true, 0
	b.batches++
	b.Store.BeginBatch()
}

func (b *batchRecorder) EndBatch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.in {
		b.fail("EndBatch outside a batch")
	}
	if b.r != nil && b.cur > 0 && b.r.Offset() >= b.lastInside {
		b.fail("offset %d published before EndBatch of a batch ending at %d", b.r.Offset(), b.lastInside)
	}
	b.in = false
	b.maxBytes = max(b.maxBytes, b.cur)
	b.Store.EndBatch()
}

func (b *batchRecorder) Apply(cmd psync.Command) error {
	b.mu.Lock()
	in := b.in
	if in {
		b.cur += len(cmd.Raw)
		b.lastInside = cmd.Offset
	}
	b.mu.Unlock()
	if !in && len(cmd.Raw) > 0 {
		b.mu.Lock()
		b.fail("%s at %d applied outside a batch", cmd.Name(), cmd.Offset)
		b.mu.Unlock()
	}
	return b.Store.Apply(cmd)
}

func TestBatchApplierBrackets(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	rec := &batchRecorder{Store: psynctest.NewStore()}
	f := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.Loader, c.Applier = rec.Store, rec })
	f.store = rec.Store // what waitSynced compares with the master's
	rec.mu.Lock()
	rec.r = f.r
	rec.mu.Unlock()
	waitSynced(t, f, m)
	writeN(t, m, "k", 3000, 100) // ~400 KB: several reads, several batches
	block := psync.AppendCommandString(nil, "MULTI")
	block = psync.AppendCommandString(block, "SET", "x", "1")
	m.m.Feed(psync.AppendCommandString(block, "EXEC"))
	require.NoError(t, m.store.Set("x", "1")) // the master's store has it too
	waitSynced(t, f, m)
	f.r.Disconnect() // a batch may be open when the link is cut: it must close
	writeN(t, m, "after", 100, 100)
	waitSynced(t, f, m)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Empty(t, rec.errs)
	assert.False(t, rec.in, "no batch left open")
	assert.Greater(t, rec.batches, 1)
	assert.LessOrEqual(t, rec.maxBytes, 64<<10+200, "a batch is about 64 KiB at most")
	assert.NoError(t, rec.Store.Err())
}
