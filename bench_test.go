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
