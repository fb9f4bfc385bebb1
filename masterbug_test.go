package psync_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLegacySyncReplicaNotDroppedWithoutAcks: a peer that replicates with
// the legacy SYNC (redis-cli --replica, pre-2.8 replicas) never sends
// REPLCONF ACK, and Redis never times it out for that (replicationCron
// skips CLIENT_PRE_PSYNC replicas in its ACK timeout check). psync's master
// drops it after Timeout with "no ACK", so `redis-cli --replica` against a
// psync master stops after repl-timeout.
func TestLegacySyncReplicaNotDroppedWithoutAcks(t *testing.T) {
	store := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{
		Snapshotter: store, Timeout: 200 * time.Millisecond, PingPeriod: -1, FullSyncDelay: -1,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer m.Close()
	store.SetMaster(m)
	require.NoError(t, store.Set("a", "1"))

	mine, theirs := net.Pipe()
	defer theirs.Close()
	served := make(chan error, 1)
	go func() { served <- m.Serve(context.Background(), mine) }()
	_, err = theirs.Write([]byte("SYNC\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(theirs)
	hdr, err := br.ReadString('\n')
	require.NoError(t, err)
	var n int64
	_, err = fmt.Sscanf(hdr, "$%d\r\n", &n)
	require.NoError(t, err, "header %q", hdr)
	_, err = io.CopyN(io.Discard, br, n)
	require.NoError(t, err)

	// Stream for 4 Timeouts, never acknowledging, as redis-cli --replica.
	for i := 0; i < 16; i++ {
		key := fmt.Sprintf("k%d", i)
		require.NoError(t, store.Set(key, "v"))
		want := string(psync.AppendCommandString(nil, "SET", key, "v"))
		got := make([]byte, len(want))
		_ = theirs.SetReadDeadline(time.Now().Add(time.Second))
		_, err := io.ReadFull(br, got)
		require.NoError(t, err, "legacy replica dropped after %d writes", i)
		require.Equal(t, want, string(got))
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-served:
		assert.Fail(t, "Serve ended", "%v", err)
	default:
	}
	assert.True(t, strings.HasPrefix(hdr, "$"))
}
