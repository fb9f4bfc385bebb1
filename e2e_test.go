package psync_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quiet discards logs unless PSYNC_TEST_LOG is set.
var quiet = func() *slog.Logger {
	if os.Getenv("PSYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}()

// node is a master store and its Master.
type node struct {
	store *psynctest.Store
	m     *psync.Master
}

func newMaster(t *testing.T, cfg psync.MasterConfig) *node {
	t.Helper()
	s := psynctest.NewStore()
	cfg.Snapshotter = s
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	m, err := psync.NewMaster(cfg)
	require.NoError(t, err)
	s.SetMaster(m)
	t.Cleanup(func() { m.Close() })
	return &node{store: s, m: m}
}

// follower is a replica store and its Replica, running until the test ends.
type follower struct {
	store *psynctest.Store
	r     *psync.Replica
	stop  context.CancelFunc
	done  chan error
}

func startReplica(t *testing.T, dial func(context.Context) (io.ReadWriteCloser, error), mod func(*psync.ReplicaConfig)) *follower {
	t.Helper()
	s := psynctest.NewStore()
	cfg := psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	if ps, ok := cfg.Applier.(*psynctest.Store); ok {
		s = ps
	}
	r, err := psync.NewReplica(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{store: s, r: r, stop: cancel, done: make(chan error, 1)}
	go func() { f.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
		assert.NoError(t, s.Err(), "stream invariants")
	})
	return f
}

func waitSynced(t *testing.T, f *follower, m *node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { return f.r.Stats().LinkUp }, 10*time.Second, time.Millisecond, "link never came up: %+v", f.r.Stats())
	require.NoError(t, f.r.WaitOffset(ctx, m.m.Offset()), "replica stuck at %d, master at %d: %+v", f.r.Offset(), m.m.Offset(), f.r.Stats())
	assert.Equal(t, m.store.Digest(), f.store.Digest(), "datasets differ")
	assert.Equal(t, m.m.Offset(), f.r.Offset())
}

func writeN(t *testing.T, n *node, prefix string, count, size int) {
	t.Helper()
	v := strings.Repeat("v", size)
	for i := 0; i < count; i++ {
		require.NoError(t, n.store.Set(fmt.Sprintf("%s:%d", prefix, i), v))
	}
}

// transports runs a scenario over net.Pipe and over TCP on 127.0.0.1.
func transports(t *testing.T, fn func(t *testing.T, m *node, dial func(context.Context) (io.ReadWriteCloser, error), cut func())) {
	t.Run("pipe", func(t *testing.T) {
		m := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10})
		d := psynctest.NewDialer(m.m)
		t.Cleanup(d.Close)
		fn(t, m, gated(d.Dial), func() { d.Last().Cut() })
	})
	t.Run("tcp", func(t *testing.T) {
		m := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() {
			defer close(served)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go m.m.Serve(ctx, c)
			}
		}()
		t.Cleanup(func() { cancel(); ln.Close(); <-served })
		var last *psynctest.Conn
		dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				return nil, err
			}
			last = psynctest.Wrap(c)
			return last, nil
		}
		fn(t, m, gated(dial), func() { last.Cut() })
	})
}

// gate holds dials while closed, so a test can write while a replica is
// disconnected.
// gated wraps dial so that holdDials/releaseDials can keep a replica away.
func gated(dial func(context.Context) (io.ReadWriteCloser, error)) func(context.Context) (io.ReadWriteCloser, error) {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		gateMu.Lock()
		ch := gateCh
		gateMu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return dial(ctx)
	}
}

var (
	gateMu sync.Mutex
	gateCh chan struct{}
)

func holdDials() {
	gateMu.Lock()
	gateCh = make(chan struct{})
	gateMu.Unlock()
}

// waitReleased waits until m keeps nothing beyond its backlog for any
// replica. Until the master notices a cut link, that link's cursor keeps
// what it has not sent (as Redis 7 keeps the shared replication buffer a
// replica still references), and a replica reconnecting meanwhile could
// rightly continue from it: a test that wants the reconnection to fall
// outside the backlog waits for this first.
func waitReleased(t *testing.T, m *node) {
	t.Helper()
	require.Eventually(t, func() bool { return m.m.Backlog().Retained() == 0 }, 5*time.Second, time.Millisecond,
		"the cut link's retention released")
}

func releaseDials() {
	gateMu.Lock()
	close(gateCh)
	gateCh = nil
	gateMu.Unlock()
}

func TestFirstSyncStreamingCutAndOverflow(t *testing.T) {
	transports(t, func(t *testing.T, m *node, dial func(context.Context) (io.ReadWriteCloser, error), cut func()) {
		writeN(t, m, "before", 200, 50)
		f := startReplica(t, dial, nil)
		waitSynced(t, f, m)
		assert.EqualValues(t, 1, f.r.Stats().FullSyncs, "first sync is full")

		writeN(t, m, "stream", 300, 20)
		waitSynced(t, f, m)
		assert.EqualValues(t, 1, f.store.Loads())

		// Cut the link; the writes made meanwhile fit the backlog.
		partialBefore := m.m.Stats().PartialOK
		cut()
		writeN(t, m, "during-cut", 100, 20)
		waitSynced(t, f, m)
		st := f.r.Stats()
		assert.EqualValues(t, 1, st.FullSyncs, "no second full sync")
		assert.EqualValues(t, 1, st.PartialSyncs, "reconnect continued partially")
		assert.Equal(t, partialBefore+1, m.m.Stats().PartialOK)

		// Stall the replica past the backlog: the master drops it, and it
		// comes back with a full resync.
		holdDials()
		cut()
		writeN(t, m, "overflow", 200, 1000) // 200 KB > 64 KiB backlog
		waitReleased(t, m)
		releaseDials()
		waitSynced(t, f, m)
		st = f.r.Stats()
		assert.EqualValues(t, 2, st.FullSyncs, "backlog overflow forces a full resync: %+v %+v", st, m.m.Stats())
		assert.EqualValues(t, 2, f.store.Loads())
		assert.GreaterOrEqual(t, m.m.Stats().PartialErr, int64(1))
	})
}
