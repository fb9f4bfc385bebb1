package psync_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chainNode is a replica that also serves sub-replicas through its own
// Master, and can be promoted.
type chainNode struct {
	*follower
	m  *psync.Master
	as *node // the same store and master, seen as a master node
}

func startChainNode(t *testing.T, dial func(context.Context) (io.ReadWriteCloser, error), mod func(*psync.ReplicaConfig)) *chainNode {
	t.Helper()
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet, BacklogSize: 64 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s.SetMaster(m)
	f := startReplica(t, dial, func(c *psync.ReplicaConfig) {
		c.Loader, c.Applier, c.Master = s, s, m
		if mod != nil {
			mod(c)
		}
	})
	return &chainNode{follower: f, m: m, as: &node{store: s, m: m}}
}

// switchable is a dial function whose target can change, as replicas are
// repointed during a failover.
type switchable struct {
	mu   sync.Mutex
	dial func(context.Context) (io.ReadWriteCloser, error)
}

func (s *switchable) set(d func(context.Context) (io.ReadWriteCloser, error)) {
	s.mu.Lock()
	s.dial = d
	s.mu.Unlock()
}

func (s *switchable) Dial(ctx context.Context) (io.ReadWriteCloser, error) {
	s.mu.Lock()
	d := s.dial
	s.mu.Unlock()
	return d(ctx)
}

// dialerFor returns an in-process dialer to m over the named transport.
func dialerFor(t testing.TB, m *psync.Master, transport string) *psynctest.Dialer {
	t.Helper()
	if transport == "tcp" {
		d, err := psynctest.NewTCPDialer(m)
		require.NoError(t, err)
		t.Cleanup(d.Close)
		return d
	}
	d := psynctest.NewDialer(m)
	t.Cleanup(d.Close)
	return d
}

func TestChainedReplicationByteForByte(t *testing.T) {
	for _, tr := range []string{"pipe", "tcp"} {
		t.Run(tr, func(t *testing.T) { testChain(t, tr) })
	}
}

func testChain(t *testing.T, tr string) {
	top := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10})
	d1 := dialerFor(t, top.m, tr)
	writeN(t, top, "a", 100, 20)
	mid := startChainNode(t, gated(d1.Dial), nil)
	waitSynced(t, mid.follower, top)
	d2 := dialerFor(t, mid.m, tr)
	leaf := startReplica(t, d2.Dial, nil)
	writeN(t, top, "b", 100, 20)
	waitSynced(t, mid.follower, top)
	waitSynced(t, leaf, top)

	// Same history everywhere: replid and offsets.
	assert.Equal(t, top.m.Position(), mid.r.Position())
	assert.Equal(t, top.m.Position(), mid.m.Position())
	assert.Equal(t, top.m.Position(), leaf.r.Position())

	// A cut between mid and leaf: leaf continues partially from mid's backlog.
	d2.Last().Cut()
	writeN(t, top, "c", 50, 20)
	waitSynced(t, leaf, top)
	assert.EqualValues(t, 1, leaf.r.Stats().FullSyncs)
	assert.EqualValues(t, 1, leaf.r.Stats().PartialSyncs)

	// A cut between top and mid: both continue partially.
	d1.Last().Cut()
	writeN(t, top, "d", 50, 20)
	waitSynced(t, mid.follower, top)
	waitSynced(t, leaf, top)
	assert.EqualValues(t, 1, mid.r.Stats().FullSyncs)
	assert.EqualValues(t, 1, mid.r.Stats().PartialSyncs)
	assert.EqualValues(t, 1, leaf.r.Stats().FullSyncs)

	// mid full-resyncs (backlog overflow): leaf is dropped and resyncs too.
	holdDials()
	d1.Last().Cut()
	writeN(t, top, "e", 200, 1000)
	waitReleased(t, top)
	releaseDials()
	waitSynced(t, mid.follower, top)
	waitSynced(t, leaf, top)
	assert.EqualValues(t, 2, mid.r.Stats().FullSyncs)
	assert.EqualValues(t, 2, leaf.r.Stats().FullSyncs, "a replica that full-resyncs makes its sub-replicas resync")
	assert.Equal(t, top.m.Position(), leaf.r.Position())
}

func TestSubReplicaRefusedWhileMasterLinkDown(t *testing.T) {
	top := newMaster(t, psync.MasterConfig{})
	d1 := psynctest.NewDialer(top.m)
	t.Cleanup(d1.Close)
	writeN(t, top, "a", 10, 10)
	holdDials()
	mid := startChainNode(t, gated(d1.Dial), nil)
	d2 := psynctest.NewDialer(mid.m)
	t.Cleanup(d2.Close)
	leaf := startReplica(t, d2.Dial, nil)
	require.Eventually(t, func() bool { return leaf.r.Stats().LastError != nil }, 5*time.Second, time.Millisecond)
	assert.Contains(t, leaf.r.Stats().LastError.Error(), "NOMASTERLINK")
	releaseDials()
	waitSynced(t, mid.follower, top)
	waitSynced(t, leaf, top)
}

// Promote a replica with three others attached to the same master: all
// three continue with +CONTINUE <newid>, no snapshot.
func TestPromotionKeepsOthersPartial(t *testing.T) {
	for _, tr := range []string{"pipe", "tcp"} {
		t.Run(tr, func(t *testing.T) { testPromotion(t, tr) })
	}
}

func testPromotion(t *testing.T, tr string) {
	old := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10})
	d0 := dialerFor(t, old.m, tr)
	writeN(t, old, "a", 100, 20)

	var cand *chainNode
	candCtx, candStop := context.WithCancel(context.Background())
	{
		s := psynctest.NewStore()
		m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet, BacklogSize: 64 << 10})
		require.NoError(t, err)
		t.Cleanup(func() { m.Close() })
		s.SetMaster(m)
		r, err := psync.NewReplica(psync.ReplicaConfig{Dial: d0.Dial, Loader: s, Applier: s, Master: m, Logger: quiet})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- r.Run(candCtx) }()
		cand = &chainNode{follower: &follower{store: s, r: r, stop: candStop, done: done}, m: m, as: &node{store: s, m: m}}
	}
	dials := make([]*switchable, 3)
	others := make([]*follower, 3)
	for i := range others {
		dials[i] = &switchable{dial: d0.Dial}
		others[i] = startReplica(t, dials[i].Dial, nil)
	}
	writeN(t, old, "b", 100, 20)
	waitSynced(t, cand.follower, old)
	for _, o := range others {
		waitSynced(t, o, old)
	}
	oldPos := old.m.Position()

	// The old master dies; the candidate is promoted (REPLICAOF NO ONE).
	old.m.Close()
	d0.Close()
	candStop()
	<-cand.done
	pos, err := cand.m.Promote()
	require.NoError(t, err)
	assert.NotEqual(t, oldPos.ID, pos.ID)
	assert.Equal(t, oldPos.Offset, pos.Offset)
	st := cand.m.Stats()
	assert.Equal(t, oldPos.ID, st.ReplID2)
	assert.Equal(t, oldPos.Offset+1, st.SecondOffset)

	// The others are pointed at the new master.
	d1 := dialerFor(t, cand.m, tr)
	for _, d := range dials {
		d.set(d1.Dial)
	}
	writeN(t, cand.as, "c", 100, 20)
	for _, o := range others {
		waitSynced(t, o, cand.as)
		s := o.r.Stats()
		assert.EqualValues(t, 1, s.FullSyncs, "no snapshot after the failover")
		assert.GreaterOrEqual(t, s.PartialSyncs, int64(1))
		assert.Equal(t, pos.ID, s.ReplID)
		assert.Equal(t, oldPos.ID, s.ReplID2)
	}
	assert.EqualValues(t, 3, cand.m.Stats().PartialOK)
	assert.Zero(t, cand.m.Stats().FullSyncs)
}

// The old master comes back as a replica of the promoted one: it continues
// partially when it wrote nothing after the promotion point, and full-syncs
// when its history diverged.
func TestDemotedMasterRejoins(t *testing.T) {
	for _, diverged := range []bool{false, true} {
		name := "same history"
		if diverged {
			name = "diverged"
		}
		t.Run(name, func(t *testing.T) {
			old := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10})
			d0 := psynctest.NewDialer(old.m)
			t.Cleanup(d0.Close)
			writeN(t, old, "a", 100, 20)
			candCtx, candStop := context.WithCancel(context.Background())
			s := psynctest.NewStore()
			cm, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet, BacklogSize: 64 << 10})
			require.NoError(t, err)
			t.Cleanup(func() { cm.Close() })
			s.SetMaster(cm)
			r, err := psync.NewReplica(psync.ReplicaConfig{Dial: d0.Dial, Loader: s, Applier: s, Master: cm, Logger: quiet})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- r.Run(candCtx) }()
			cand := &node{store: s, m: cm}
			require.NoError(t, r.WaitOffset(context.Background(), old.m.Offset()))

			// Partition: the candidate is promoted; the old master may go on
			// taking writes meanwhile (diverged).
			candStop()
			<-done
			d0.Close()
			_, err = cm.Promote()
			require.NoError(t, err)
			if diverged {
				writeN(t, old, "lost", 10, 5)
			}
			writeN(t, cand, "b", 50, 20)

			// The old master becomes a replica of the new one, with its data.
			d1 := psynctest.NewDialer(cm)
			t.Cleanup(d1.Close)
			demoted := startReplica(t, d1.Dial, func(c *psync.ReplicaConfig) {
				c.Loader, c.Applier, c.Master = old.store, old.store, old.m
			})
			waitSynced(t, demoted, cand)
			st := demoted.r.Stats()
			if diverged {
				assert.EqualValues(t, 1, st.FullSyncs, "a diverged history needs a snapshot")
			} else {
				assert.Zero(t, st.FullSyncs, "the cached-master trick: continue partially")
				assert.EqualValues(t, 1, st.PartialSyncs)
			}
			assert.Equal(t, cm.Position(), demoted.r.Position())
		})
	}
}

func TestWaitAcks(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{})
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	rs := make([]*follower, 3)
	for i := range rs {
		rs[i] = startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.AckPeriod = time.Hour })
	}
	writeN(t, m, "a", 10, 10)
	for _, r := range rs {
		waitSynced(t, r, m)
	}
	var conns []*psynctest.Conn
	require.Eventually(t, func() bool { conns = d.Live(); return len(conns) == 3 }, 5*time.Second, time.Millisecond)
	conns[2].Stall()
	require.NoError(t, m.store.Set("x", "y"))
	off := m.m.Offset()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	assert.Equal(t, 2, m.m.WaitAcks(ctx, 2, off), "two live replicas ack at once")

	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	assert.Equal(t, 2, m.m.WaitAcks(ctx2, 3, off), "the stalled one never acks: WAIT times out with the count")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)

	conns[2].Resume()
	ctx3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	assert.Equal(t, 3, m.m.WaitAcks(ctx3, 3, off))
}

func TestMinReplicasToWrite(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{MinReplicasToWrite: 2, MinReplicasMaxLag: 300 * time.Millisecond})
	assert.ErrorIs(t, m.m.CheckWrite(), psync.ErrNoReplicas, "no replicas yet")
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	a := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.AckPeriod = 20 * time.Millisecond })
	b := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.AckPeriod = 20 * time.Millisecond })
	writeN(t, m, "a", 10, 10)
	waitSynced(t, a, m)
	waitSynced(t, b, m)
	require.Eventually(t, func() bool { return m.m.CheckWrite() == nil }, 5*time.Second, 5*time.Millisecond)

	var live []*psynctest.Conn
	require.Eventually(t, func() bool { live = d.Live(); return len(live) == 2 }, 5*time.Second, time.Millisecond)
	live[1].Stall()
	require.Eventually(t, func() bool { return m.m.CheckWrite() != nil }, 5*time.Second, 5*time.Millisecond, "a replica whose ACKs stop is not good")
	assert.ErrorIs(t, m.m.CheckWrite(), psync.ErrNoReplicas)
	live[1].Resume()
	require.Eventually(t, func() bool { return m.m.CheckWrite() == nil }, 5*time.Second, 5*time.Millisecond, "recovers")
}
