package psync_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowLoader makes every snapshot load take at least delay, as a large
// dataset would.
type slowLoader struct {
	*psynctest.Store
	delay time.Duration
}

func (s slowLoader) Load(ctx context.Context, r io.Reader, info psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	time.Sleep(s.delay)
	return s.Store.Load(ctx, r, info)
}

// The endless full-sync loop: writes during a slow load overflow what the
// master keeps for the replica (its output-buffer limit in Redis, MaxLag
// here, set to the backlog size to make the overflow quick), so the replica
// that finishes loading cannot continue and starts over, forever. With one
// link (Redis's way) it loops; with psync's second link it syncs once.
func TestFullSyncUnderLoadDoesNotLoop(t *testing.T) {
	for _, single := range []bool{true, false} {
		t.Run(fmt.Sprintf("single_link=%v", single), func(t *testing.T) {
			m := newMaster(t, psync.MasterConfig{BacklogSize: 64 << 10, MaxLag: 64 << 10})
			writeN(t, m, "seed", 100, 100)
			d := psynctest.NewDialer(m.m)
			t.Cleanup(d.Close)

			// Writes of 1 KB as fast as a short sleep allows: even a slow,
			// loaded machine writes many times the 64 KiB backlog during each
			// 500 ms load.
			ctx, stopWriting := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := strings.Repeat("w", 1000)
				for i := 0; ctx.Err() == nil; i++ {
					if err := m.store.Set(fmt.Sprintf("w:%d", i%5000), v); err != nil {
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
			defer func() { stopWriting(); wg.Wait() }()

			s := psynctest.NewStore()
			f := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) {
				c.Loader, c.Applier = slowLoader{s, 500 * time.Millisecond}, s
				c.SingleLink = single
			})
			if single {
				require.Eventually(t, func() bool { return f.r.Stats().FullSyncs >= 3 }, 10*time.Second, 5*time.Millisecond,
					"a Redis-style replica loops on full resyncs")
				assert.Less(t, f.r.Offset(), m.m.Offset())
				return
			}
			require.Eventually(t, func() bool {
				return f.r.Stats().LinkUp && m.m.Offset()-f.r.Offset() < 64<<10
			}, 10*time.Second, 5*time.Millisecond, "streaming live after one full resync: %+v", f.r.Stats())
			stopWriting()
			wg.Wait()
			waitSynced(t, f, m)
			// One full resync; a second is tolerated on a starved machine,
			// where the backlog (psync's only output buffer) can overrun the
			// second link's sender once, but never the loop above.
			assert.LessOrEqual(t, f.r.Stats().FullSyncs, int64(2), "no full-sync loop")
			ms := m.m.Stats()
			assert.Greater(t, ms.WriteRate, 0.0)
		})
	}
}
