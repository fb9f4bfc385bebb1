package psync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/require"
)

// setCmd is the 144-byte SET of the baselines: key:000000xxxxxx and 100 B.
var setCmd = psync.AppendCommandString(nil, "SET", "key:000000123456", strings.Repeat("v", 100))

// BenchmarkFeed measures the master's write path with 0, 1, 10 and 100
// replicas attached and streaming (each drains its link as fast as it can).
func BenchmarkFeed(b *testing.B) {
	if len(setCmd) != 144 {
		b.Fatalf("SET is %d bytes", len(setCmd))
	}
	for _, n := range []int{0, 1, 10, 100} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			s := psynctest.NewStore()
			m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, BacklogSize: 64 << 20, Logger: quiet, FullSyncDelay: -1})
			require.NoError(b, err)
			defer m.Close()
			s.SetMaster(m)
			for i := 0; i < n; i++ {
				a, c := net.Pipe()
				go m.Serve(context.Background(), c)
				defer a.Close()
				br := bufio.NewReader(a)
				_, err := a.Write([]byte("REPLCONF capa eof\r\nPSYNC ? -1\r\n"))
				require.NoError(b, err)
				_, err = br.ReadString('\n') // +OK
				require.NoError(b, err)
				go io.Copy(io.Discard, br)
			}
			require.Eventually(b, func() bool {
				st := m.Stats()
				for _, r := range st.Replicas {
					if r.State != "online" && r.State != "send_bulk" {
						return false
					}
				}
				return len(st.Replicas) == n
			}, 10*time.Second, time.Millisecond)
			b.SetBytes(int64(len(setCmd)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Feed(setCmd)
			}
		})
	}
}

type noopApplier struct{}

func (noopApplier) Apply(psync.Command) error { return nil }

// BenchmarkStreamTCP measures the stream from Feed to a replica that parses
// every command (no-op applier), over TCP loopback.
func BenchmarkStreamTCP(b *testing.B) {
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, BacklogSize: 64 << 20, Logger: quiet})
	require.NoError(b, err)
	defer m.Close()
	s.SetMaster(m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.Serve(context.Background(), c)
		}
	}()
	r, err := psync.NewReplica(psync.ReplicaConfig{
		Dial: func(ctx context.Context) (io.ReadWriteCloser, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		},
		Loader: s, Applier: noopApplier{}, Logger: quiet,
	})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	require.Eventually(b, func() bool { return r.Stats().LinkUp }, 10*time.Second, time.Millisecond)
	batch := make([]byte, 0, 64*len(setCmd))
	for i := 0; i < 64; i++ {
		batch = append(batch, setCmd...)
	}
	b.SetBytes(int64(len(setCmd)))
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		m.Feed(batch)
		// Stay within the backlog: wait when the replica is 32 MiB behind.
		if m.Offset()-r.Offset() > 32<<20 {
			_ = r.WaitOffset(ctx, m.Offset()-16<<20)
		}
	}
	require.NoError(b, r.WaitOffset(ctx, m.Offset()))
}

// BenchmarkPartialResync measures a cut link's way back to streaming: the
// replica notices the cut, redials, handshakes, gets +CONTINUE and applies
// the next write.
func BenchmarkPartialResync(b *testing.B) {
	for _, tr := range []string{"pipe", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			s := psynctest.NewStore()
			m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet})
			require.NoError(b, err)
			defer m.Close()
			s.SetMaster(m)
			d := benchDialer(b, m, tr)
			dial := d.Dial
			rs := psynctest.NewStore()
			r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: rs, Applier: rs, Logger: quiet})
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go r.Run(ctx)
			require.NoError(b, s.Set("k", "v"))
			require.NoError(b, r.WaitOffset(ctx, m.Offset()))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d.Last().Close()
				require.NoError(b, s.Set("k", "v"))
				require.NoError(b, r.WaitOffset(ctx, m.Offset()))
			}
			b.StopTimer()
			require.EqualValues(b, b.N, r.Stats().PartialSyncs)
		})
	}
}

// zeroSnapshot is a snapshot of n bytes that costs nothing to produce.
type zeroSnapshot struct{ n, off int64 }

func (z zeroSnapshot) Offset() int64 { return z.off }
func (z zeroSnapshot) Len() int64    { return z.n }
func (z zeroSnapshot) Release()      {}
func (z zeroSnapshot) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	var done int64
	for done < z.n {
		k, err := w.Write(buf[:min(int64(len(buf)), z.n-done)])
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

type zeroSnapshotter struct {
	n int64
	m *psync.Master
}

func (z *zeroSnapshotter) Snapshot(context.Context) (psync.Snapshot, error) {
	return zeroSnapshot{n: z.n, off: z.m.Offset()}, nil
}

type discardLoader struct{}

type discarded struct{}

func (discarded) Commit()  {}
func (discarded) Discard() {}

func (discardLoader) Load(_ context.Context, r io.Reader, _ psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	_, err := io.Copy(io.Discard, r)
	return discarded{}, err
}

// BenchmarkSnapshotTransfer measures a full resync of a 256 MiB snapshot,
// from the replica's start to the loaded snapshot, over net.Pipe and TCP.
func BenchmarkSnapshotTransfer(b *testing.B) {
	const size = 256 << 20
	for _, tr := range []string{"pipe", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			zs := &zeroSnapshotter{n: size}
			m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: zs, Logger: quiet, FullSyncDelay: -1})
			require.NoError(b, err)
			defer m.Close()
			zs.m = m
			dial := benchDialer(b, m, tr).Dial
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: discardLoader{}, Applier: noopApplier{}, Logger: quiet, SingleLink: true})
				require.NoError(b, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); r.Run(ctx) }()
				for r.Stats().FullSyncs == 0 {
					time.Sleep(100 * time.Microsecond)
				}
				cancel()
				<-done
			}
		})
	}
}

// benchDialer links replicas to m in-process over "pipe" or "tcp".
func benchDialer(b *testing.B, m *psync.Master, transport string) *psynctest.Dialer {
	b.Helper()
	if transport == "tcp" {
		d, err := psynctest.NewTCPDialer(m)
		require.NoError(b, err)
		b.Cleanup(d.Close)
		return d
	}
	d := psynctest.NewDialer(m)
	b.Cleanup(d.Close)
	return d
}
