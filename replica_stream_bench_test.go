package psync_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/require"
)

// BenchmarkReplicaStream measures the replica's stream loop alone: a fake
// master answers the handshake with +CONTINUE and then writes b.N 144-byte
// SETs, prebuilt in 64 KiB chunks, over net.Pipe; the replica applies them
// with a no-op applier. "chained" gives the replica a Master, so every
// command also reaches its backlog (the cost of chained replication, and
// of every kvserver replica).
func BenchmarkReplicaStream(b *testing.B) {
	for _, chained := range []bool{false, true} {
		name := "plain"
		if chained {
			name = "chained"
		}
		b.Run(name, func(b *testing.B) {
			// 455 SETs: 65,520 bytes.
			var chunk []byte
			for len(chunk)+len(setCmd) <= 64<<10 {
				chunk = append(chunk, setCmd...)
			}
			perChunk := len(chunk) / len(setCmd)
			start := make(chan struct{})
			dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
				a, c := net.Pipe()
				go fakeStreamingMaster(c, start, chunk, perChunk, b.N)
				return a, nil
			}
			cfg := psync.ReplicaConfig{
				Dial: dial, Loader: discardLoader{}, Applier: noopApplier{}, Logger: quiet,
				Position: psync.Position{ID: fakeID, Offset: 0},
			}
			if chained {
				s := psynctest.NewStore()
				m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, BacklogSize: 1 << 20, Logger: quiet})
				require.NoError(b, err)
				defer m.Close()
				cfg.Master = m
			}
			r, err := psync.NewReplica(cfg)
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(ctx)
			require.Eventually(b, func() bool { return r.Stats().LinkUp }, 5*time.Second, time.Millisecond)
			b.SetBytes(int64(len(setCmd)))
			b.ReportAllocs()
			b.ResetTimer()
			close(start)
			// Poll rather than WaitOffset: a waiter woken at every batch
			// would measure the scheduler's wake-ups, not the loop.
			for want := int64(b.N * len(setCmd)); r.Offset() < want; {
				time.Sleep(200 * time.Microsecond)
			}
			b.StopTimer()
			if chained {
				require.Equal(b, r.Offset(), cfg.Master.Offset())
			}
		})
	}
}

// fakeStreamingMaster answers the handshake one command at a time, then,
// once start closes, writes n commands from chunk and drains the ACKs.
func fakeStreamingMaster(c net.Conn, start <-chan struct{}, chunk []byte, perChunk, n int) {
	defer c.Close()
	cr := psync.NewCommandReader(c, psync.Limits{}, false)
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			return
		}
		if cmd.Is("psync") {
			break
		}
		reply := "+OK\r\n"
		if cmd.Is("ping") {
			reply = "+PONG\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
	if _, err := c.Write([]byte("+CONTINUE\r\n")); err != nil {
		return
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, c) // ACKs, until the replica hangs up
	}()
	<-start
	for n > 0 {
		k := min(n, perChunk)
		if _, err := c.Write(chunk[:k*len(setCmd)]); err != nil {
			return
		}
		n -= k
	}
	<-drained
}
