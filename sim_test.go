package psync_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSim runs the seeded fault simulation (psynctest.RunSim) over a budget
// of seeds: PSYNC_SIM_SEEDS of them (default 500, 40 with -short), from
// PSYNC_SIM_FIRST (default 1). PSYNC_SIM_SEED=n runs seed n alone, as does
// go test -run 'TestSim/seed=n$'. Each seed draws its own topology (1 to 3
// replicas, a chain or not, single or dual links, promotions, restarts,
// diskless snapshots) with psynctest.DefaultSimConfig. The aggregated
// counts are logged with -v.
func TestSim(t *testing.T) {
	first, count := uint64(1), uint64(500)
	if testing.Short() {
		count = 40
	}
	if v := os.Getenv("PSYNC_SIM_SEEDS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "PSYNC_SIM_SEEDS")
		count = n
	}
	if v := os.Getenv("PSYNC_SIM_FIRST"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "PSYNC_SIM_FIRST")
		first = n
	}
	if v := os.Getenv("PSYNC_SIM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "PSYNC_SIM_SEED")
		first, count = n, 1
	}
	goroutines := runtime.NumGoroutine()

	// The runs mostly wait (on timeouts, pauses, backoffs), so more of them
	// go at once than -parallel (GOMAXPROCS) would allow: a pool of workers
	// calls t.Run concurrently.
	workers := 4 * runtime.GOMAXPROCS(0)
	seeds := make(chan uint64)
	var (
		mu    sync.Mutex
		total psynctest.SimResult
		ran   int
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					cfg := psynctest.DefaultSimConfig(seed)
					cfg.Rerun = fmt.Sprintf("PSYNC_SIM_SEED=%d go test -race -run 'TestSim$' -v . (or -run 'TestSim/seed=%d$')", seed, seed)
					res := psynctest.RunSim(t, cfg)
					mu.Lock()
					total.Add(res)
					ran++
					mu.Unlock()
					if testing.Verbose() && count == 1 {
						t.Log(res)
					}
				})
			}
		}()
	}
	for seed := first; seed < first+count; seed++ {
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	t.Logf("%d seeds from %d in %v (%v of runs): %v", ran, first, time.Since(start).Round(time.Millisecond), total.Duration.Round(time.Second), total)
	assert.Zero(t, total.CoveredFull, "full resyncs where the backlog covered the replica")

	// Every run stops what it started.
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+5 }, 10*time.Second, 10*time.Millisecond,
		"goroutines: %d before the runs, %d after", goroutines, runtime.NumGoroutine())
}

// TestBugGetAckMissingFromBacklog (fixed in e8c50b9): a chained replica
// (ReplicaConfig.Master set) that failed to answer a REPLCONF GETACK
// returned from stream() after counting the GETACK in its offset but before
// writing it to its backlog, so the replica and its Master disagreed by 37
// bytes for good, and its sub-replicas (and, after a promotion, every
// replica) got a stream whose offsets were off. Found by TestSim with
// GETACKs scheduled.
func TestBugGetAckMissingFromBacklog(t *testing.T) {
	s := psynctest.NewStore()
	pos := psync.Position{ID: fakeID, Offset: 100}
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Position: pos, Logger: quiet})
	require.NoError(t, err)
	defer m.Close()
	s.SetMaster(m)
	dials := 0
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		if dials++; dials > 1 {
			return nil, errors.New("the master is gone")
		}
		a, b := net.Pipe()
		go func() {
			br := bufio.NewReader(b)
			handshakeUpToPSYNC(b, br)
			b.Write([]byte("+CONTINUE\r\n"))
			b.Write(psync.AppendCommandString(nil, "SET", "x", "y"))
			b.Write(psync.AppendCommandString(nil, "REPLCONF", "GETACK", "*"))
			b.Close() // the replica's ACK cannot be written
		}()
		return a, nil
	}
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Master: m, Position: pos, Logger: quiet, MinBackoff: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	require.Eventually(t, func() bool { return r.Stats().LastError != nil }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	set := int64(len(psync.AppendCommandString(nil, "SET", "x", "y")))
	getack := int64(len(psync.AppendCommandString(nil, "REPLCONF", "GETACK", "*")))
	assert.Equal(t, 100+set+getack, r.Offset(), "the GETACK was processed")
	assert.Equal(t, r.Offset(), m.Offset(), "the replica's backlog holds every byte its offset counts")
}

// TestBugPingsFillBacklog (fixed in e8c50b9): psynctest.Store labelled a
// snapshot with the offset of its last write, not the master's offset, so
// the stream PINGs written after it had to stay in the backlog for the
// snapshot to be followed; once they filled it every full resync failed
// ("snapshot offset N not followed by the backlog") until the next write: a
// replica could not sync a quiet master with a small backlog, nor a master
// restarted from its persisted position. Found by TestSim (a promoted
// chained node with a 220-byte backlog; a restarted master with PINGs).
func TestBugPingsFillBacklog(t *testing.T) {
	m := newMaster(t, psync.MasterConfig{BacklogSize: 100, PingPeriod: 5 * time.Millisecond})
	writeN(t, m, "k", 3, 10)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	f := startReplica(t, d.Dial, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	require.NoError(t, f.r.WaitOffset(ctx, m.m.Offset()), "the replica never synced: %+v; master %+v", f.r.Stats(), m.m.Stats())
	assert.Equal(t, m.store.Digest(), f.store.Digest())
}
