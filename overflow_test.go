package psync_test

import (
	"errors"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A replica that stops reading for a while falls far more than the backlog
// behind; as a Redis replica within its output-buffer limit, it is kept and
// catches up on the same link, and the bytes kept for it are released after.
func TestStalledReplicaBeyondBacklogKept(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{BacklogSize: 16 << 10}) // MaxLag: default 256 MiB
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, nil)
	waitSynced(t, f, m)
	d.Last().Stall()
	writeN(t, m, "k", 1000, 1000) // 1 MB: 60 times the backlog
	require.Len(t, m.m.Stats().Replicas, 1, "not dropped")
	assert.Greater(t, m.m.Stats().Retained, int64(800<<10), "the stream kept for the stalled replica")
	d.Last().Resume()
	waitSynced(t, f, m)
	st := f.r.Stats()
	assert.EqualValues(t, 1, st.FullSyncs)
	assert.Zero(t, st.PartialSyncs, "never reconnected")
	assert.Equal(t, m.store.Digest(), f.store.Digest())
	writeN(t, m, "after", 20, 1000)
	waitSynced(t, f, m)
	assert.Zero(t, m.m.Backlog().Retained(), "released once read")
}

// Over MaxLag the replica is dropped and what was kept for it is released.
func TestReplicaOverMaxLagDroppedAndReleased(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{BacklogSize: 16 << 10, MaxLag: 256 << 10})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, gated(d.Dial), nil)
	waitSynced(t, f, m)
	holdDials()
	d.Last().Stall()
	writeN(t, m, "k", 1000, 1000)
	require.Eventually(t, func() bool { return len(m.m.Stats().Replicas) == 0 }, 5*time.Second, time.Millisecond, "dropped")
	assert.LessOrEqual(t, m.m.Backlog().Retained(), int64(256<<10-16<<10), "retention bounded by MaxLag")
	require.Eventually(t, func() bool { return m.m.Backlog().Retained() == 0 }, 5*time.Second, time.Millisecond, "released with the link")
	assert.True(t, hasServeError(d, psync.ErrReplicaTooFar), "dropped for lag: %v", d.ServeErrors())
	d.Last().Resume()
	releaseDials()
	waitSynced(t, f, m)
	assert.EqualValues(t, 2, f.r.Stats().FullSyncs, "1 MB behind a 16 KiB backlog: full resync")
}

// Over SoftMaxLag for SoftMaxLagTime the replica is dropped too.
func TestReplicaOverSoftMaxLagDropped(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{BacklogSize: 16 << 10, SoftMaxLag: 64 << 10, SoftMaxLagTime: 100 * time.Millisecond})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, gated(d.Dial), nil)
	waitSynced(t, f, m)
	holdDials()
	d.Last().Stall()
	writeN(t, m, "k", 200, 1000) // 200 KB: over the soft limit, far under the hard one
	require.Eventually(t, func() bool { return len(m.m.Stats().Replicas) == 0 }, 5*time.Second, time.Millisecond, "dropped")
	assert.True(t, hasServeError(d, psync.ErrReplicaTooFar), "dropped for lag: %v", d.ServeErrors())
	d.Last().Resume()
	releaseDials()
	waitSynced(t, f, m)
}

func hasServeError(d *psynctest.Dialer, target error) bool {
	for _, err := range d.ServeErrors() {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
