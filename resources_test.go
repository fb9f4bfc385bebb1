package psync_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounded resources: hostile peers against a live master (and a replica
// against a hostile master), while a healthy replica follows the master's
// writes throughout. Each case checks that memory stays far below what the
// input announces, that every goroutine of the hostile link ends, that the
// peer is dropped for the right reason, and that the healthy replica ends in
// sync.

const (
	resTimeout = 500 * time.Millisecond // the master's and hostile replicas' Timeout
	MiB        = 1 << 20
)

// resEnv is a master taking writes with a healthy replica attached.
type resEnv struct {
	m       *node
	healthy *follower
	d       *psynctest.Dialer
}

// serve runs m.Serve on one end of a pipe and returns the other, with the
// channel Serve's error arrives on.
func (e *resEnv) serve(t *testing.T) (net.Conn, chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- e.m.m.Serve(context.Background(), b) }()
	t.Cleanup(func() { a.Close() })
	return a, done
}

// served waits for Serve's end and returns its error.
func served(t *testing.T, done chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		require.FailNow(t, "the master did not drop the peer", "within %v", within)
		return nil
	}
}

// fullSyncRaw does PSYNC ? -1 on c, announcing listening port 7777, and
// reads the snapshot; it returns the reader positioned at the stream and the
// snapshot's offset.
func fullSyncRaw(t *testing.T, c net.Conn) (*bufio.Reader, int64) {
	t.Helper()
	_, err := c.Write([]byte("REPLCONF listening-port 7777 capa psync2\r\nPSYNC ? -1\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", line)
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	var id string
	var off int64
	_, err = fmt.Sscanf(line, "+FULLRESYNC %s %d\r\n", &id, &off)
	require.NoError(t, err, "reply %q", line)
	for {
		hdr, err := br.ReadString('\n')
		require.NoError(t, err)
		if hdr == "\n" {
			continue
		}
		var n int64
		_, err = fmt.Sscanf(hdr, "$%d\r\n", &n)
		require.NoError(t, err, "header %q", hdr)
		_, err = io.CopyN(io.Discard, br, n)
		require.NoError(t, err)
		return br, off
	}
}

// hostileMaster starts a replica whose first dial reaches script playing the
// master; later dials wait for the test's end. It returns the replica.
func hostileMaster(t *testing.T, script func(c net.Conn, br *bufio.Reader), mod func(*psync.ReplicaConfig)) (*psync.Replica, *psynctest.Store) {
	t.Helper()
	s := psynctest.NewStore()
	require.NoError(t, s.Set("old", "data"))
	var dials atomic.Int32
	var scripts sync.WaitGroup
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		if dials.Add(1) > 1 {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		a, b := net.Pipe()
		scripts.Add(1)
		go func() {
			defer scripts.Done()
			defer b.Close()
			script(b, bufio.NewReader(b))
		}()
		return a, nil
	}
	// One link: the hostile master is the whole story, and the first
	// link's error stays the replica's LastError.
	cfg := psync.ReplicaConfig{Dial: dial, Loader: s, Applier: s, Logger: quiet, Timeout: resTimeout, AckPeriod: 50 * time.Millisecond, SingleLink: true}
	if mod != nil {
		mod(&cfg)
	}
	r, err := psync.NewReplica(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		scripts.Wait()
	})
	return r, s
}

// lastError waits for the replica's first link to fail and returns why.
func lastError(t *testing.T, r *psync.Replica, within time.Duration) error {
	t.Helper()
	require.Eventually(t, func() bool { return r.Stats().LastError != nil }, within, time.Millisecond, "the replica never gave up on the link")
	return r.Stats().LastError
}

// flood writes chunk to c until a write fails or stop closes.
func flood(c net.Conn, chunk []byte, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// memWatch samples the heap while a case runs.
type memWatch struct {
	base, total uint64
	peak        atomic.Uint64
	stop, done  chan struct{}
}

func watchMemory() *memWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &memWatch{base: ms.HeapAlloc, total: ms.TotalAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	w.peak.Store(ms.HeapAlloc)
	go func() {
		defer close(w.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > w.peak.Load() {
					w.peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	return w
}

// end returns the heap growth at its peak and the bytes allocated.
func (w *memWatch) end() (peak, allocated int64) {
	close(w.stop)
	<-w.done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(w.peak.Load()) - int64(w.base), int64(ms.TotalAlloc - w.total)
}

func TestBoundedResources(t *testing.T) {
	cases := []struct {
		name string
		// heap bounds the heap's growth at its peak, alloc the bytes
		// allocated during the case (the healthy replica and the writes
		// included).
		heap, alloc int64
		run         func(t *testing.T, e *resEnv)
	}{
		{"bulk announced 1 GiB, over the limit", 4 * MiB, 8 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			go c.Write([]byte("*2\r\n$5\r\nHELLO\r\n$1073741824\r\n"))
			err := served(t, done, 5*time.Second)
			assert.ErrorIs(t, err, psync.ErrTooLarge)
			assert.ErrorIs(t, err, psync.ErrProtocol)
		}},
		{"bulk announced 400 MiB under the limit, 2 MiB sent, then silence", 16 * MiB, 48 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			go func() {
				if _, err := c.Write([]byte("*2\r\n$4\r\nPING\r\n$419430400\r\n")); err != nil {
					return
				}
				_, _ = c.Write(bytes.Repeat([]byte("x"), 2*MiB))
			}()
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrTimeout, "an unfinished handshake times out")
		}},
		{"array announced 2^40 elements", 4 * MiB, 8 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			go c.Write([]byte("*1099511627776\r\n"))
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrTooLarge)
		}},
		{"array announced 1,000,000 elements under the limit, 20,000 sent, then silence", 8 * MiB, 32 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			go func() {
				if _, err := c.Write([]byte("*1000000\r\n")); err != nil {
					return
				}
				_, _ = c.Write(bytes.Repeat([]byte("$1\r\na\r\n"), 20000))
			}()
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrTimeout)
		}},
		{"endless inline line without CRLF", 4 * MiB, 16 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			stop := make(chan struct{})
			defer close(stop)
			go flood(c, bytes.Repeat([]byte("A"), 64<<10), stop)
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrTooLarge, "dropped after 64 KiB, not after 16 MiB")
		}},
		{"endless RESP length line", 4 * MiB, 8 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				if _, err := c.Write([]byte("*1\r\n$")); err == nil {
					flood(c, bytes.Repeat([]byte("9"), 4<<10), stop)
				}
			}()
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrProtocol)
		}},
		{"replica that never reads", 8 * MiB, 64 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			_, err := c.Write([]byte("PSYNC ? -1\r\n"))
			require.NoError(t, err)
			// It reads nothing, not even +FULLRESYNC: the master's writes
			// block until the write deadline or the watchdog ends the link.
			err = served(t, done, 5*time.Second)
			assert.True(t, errors.Is(err, psync.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded), "dropped for a blocked write: %v", err)
		}},
		{"replica that stops reading after the snapshot", 8 * MiB, 64 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			_, _ = fullSyncRaw(t, c)
			// It acks but never reads the stream again: dropped for lag
			// (MaxLag) or for a blocked write, whichever comes first.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if _, err := c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", "0")); err != nil {
							return
						}
					}
				}
			}()
			err := served(t, done, 5*time.Second)
			assert.True(t, errors.Is(err, psync.ErrReplicaTooFar) || errors.Is(err, psync.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded),
				"dropped for lag or a blocked write: %v", err)
		}},
		{"ACK in the future", 4 * MiB, 32 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			br, _ := fullSyncRaw(t, c)
			go io.Copy(io.Discard, br)
			_, err := c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", fmt.Sprint(e.m.m.Offset()+1<<30)))
			require.NoError(t, err)
			assert.ErrorIs(t, served(t, done, 5*time.Second), psync.ErrProtocol)
		}},
		{"ACK going backwards is ignored", 4 * MiB, 32 * MiB, func(t *testing.T, e *resEnv) {
			c, done := e.serve(t)
			br, off := fullSyncRaw(t, c)
			go io.Copy(io.Discard, br)
			_, err := c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", fmt.Sprint(off)))
			require.NoError(t, err)
			ackOf := func() int64 {
				for _, r := range e.m.m.Stats().Replicas {
					if r.ListeningPort == 7777 {
						return r.AckOffset
					}
				}
				return -2
			}
			require.Eventually(t, func() bool { return ackOf() == off }, 5*time.Second, time.Millisecond)
			_, err = c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", "0"))
			require.NoError(t, err)
			_, err = c.Write(psync.AppendCommandString(nil, "REPLCONF", "ACK", fmt.Sprint(off)))
			require.NoError(t, err, "still connected after a backwards ACK")
			time.Sleep(50 * time.Millisecond)
			assert.Equal(t, off, ackOf(), "the ACK offset never goes back")
			select {
			case err := <-done:
				assert.Fail(t, "dropped for a backwards ACK", "%v", err)
			default:
			}
			c.Close()
			served(t, done, 5*time.Second)
		}},
		{"2000 connections that stop mid-handshake", 48 * MiB, 256 * MiB, func(t *testing.T, e *resEnv) {
			const n = 2000
			conns := make([]net.Conn, n)
			dones := make([]chan error, n)
			stops := []string{"PI", "*3\r\n$5\r\nPSYNC\r\n$1\r\n?", "PING\r\nREPLCONF capa eof\r\n", "*2\r\n$4\r\nAUTH\r\n$99999\r\nabc", ""}
			for i := range conns {
				conns[i], dones[i] = e.serve(t)
				if s := stops[i%len(stops)]; s != "" {
					go func(c net.Conn, s string) {
						if _, err := c.Write([]byte(s)); err == nil {
							_, _ = io.Copy(io.Discard, c) // until the master hangs up
						}
					}(conns[i], s)
				}
			}
			timeouts := 0
			for i := range dones {
				// A peer that does not read the replies in time is dropped
				// by the write deadline; the others by the handshake timeout.
				err := served(t, dones[i], 30*time.Second)
				if errors.Is(err, psync.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
					timeouts++
				} else {
					t.Logf("connection %d (%q): %v", i, stops[i%len(stops)], err)
				}
			}
			assert.Equal(t, n, timeouts, "every stalled handshake dropped for its timeout")
			assert.Empty(t, e.m.m.Stats().Replicas[1:], "only the healthy replica is left")
		}},
		{"master whose snapshot is longer than announced", 8 * MiB, 32 * MiB, func(t *testing.T, e *resEnv) {
			snap := snapshotOf(t, map[string]string{"new": "value"})
			r, s := hostileMaster(t, func(c net.Conn, br *bufio.Reader) {
				handshakeUpToPSYNC(c, br)
				go io.Copy(io.Discard, br)
				c.Write([]byte("+FULLRESYNC " + fakeID + " 0\r\n$" + fmt.Sprint(len(snap)) + "\r\n" + snap + "EXTRA BYTES\r\n"))
			}, nil)
			err := lastError(t, r, 5*time.Second)
			assert.ErrorIs(t, err, psync.ErrProtocol, "the extra bytes are read as the stream, and are not RESP")
			assert.Zero(t, s.Applied())
		}},
		{"master announcing a 1 TiB snapshot, sending 4 MiB, then silence", 24 * MiB, 96 * MiB, func(t *testing.T, e *resEnv) {
			r, s := hostileMaster(t, func(c net.Conn, br *bufio.Reader) {
				handshakeUpToPSYNC(c, br)
				go io.Copy(io.Discard, br)
				hdr := "+FULLRESYNC " + fakeID + " 0\r\n$1099511627776\r\nPSTS"
				hdr += string(binary.AppendUvarint(nil, 1)) + string(binary.AppendUvarint(nil, 1)) + "k" + string(binary.AppendUvarint(nil, 60*MiB))
				if _, err := c.Write([]byte(hdr)); err != nil {
					return
				}
				c.Write(bytes.Repeat([]byte("v"), 4*MiB))
				time.Sleep(3 * resTimeout) // silent past the replica's timeout
			}, nil)
			err := lastError(t, r, 5*time.Second)
			assert.ErrorIs(t, err, psync.ErrTimeout)
			v, _ := s.Get("old")
			assert.Equal(t, "data", v, "the failed snapshot left the old dataset")
		}},
		{"master sending a stream bulk of 400 MiB announced, 2 MiB sent", 16 * MiB, 48 * MiB, func(t *testing.T, e *resEnv) {
			r, s := hostileMaster(t, func(c net.Conn, br *bufio.Reader) {
				handshakeUpToPSYNC(c, br)
				go io.Copy(io.Discard, br)
				if _, err := c.Write([]byte("+CONTINUE\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$419430400\r\n")); err != nil {
					return
				}
				c.Write(bytes.Repeat([]byte("v"), 2*MiB))
				time.Sleep(3 * resTimeout)
			}, func(c *psync.ReplicaConfig) { c.Position = psync.Position{ID: fakeID, Offset: 10} })
			assert.ErrorIs(t, lastError(t, r, 5*time.Second), psync.ErrTimeout)
			assert.Zero(t, s.Applied())
		}},
		{"master sending an endless reply line", 4 * MiB, 16 * MiB, func(t *testing.T, e *resEnv) {
			r, _ := hostileMaster(t, func(c net.Conn, br *bufio.Reader) {
				handshakeUpToPSYNC(c, br)
				go io.Copy(io.Discard, br)
				stop := make(chan struct{})
				time.AfterFunc(5*time.Second, func() { close(stop) })
				flood(c, bytes.Repeat([]byte("+"), 64<<10), stop)
			}, nil)
			assert.ErrorIs(t, lastError(t, r, 5*time.Second), psync.ErrTooLarge)
		}},
	}

	m := newMaster(t, psync.MasterConfig{BacklogSize: 1 << 20, MaxLag: 64 << 10, Timeout: resTimeout, FullSyncDelay: -1})
	writeN(t, m, "seed", 100, 100)
	d := psynctest.NewDialer(m.m)
	t.Cleanup(d.Close)
	healthy := startReplica(t, d.Dial, func(c *psync.ReplicaConfig) { c.AckPeriod = 50 * time.Millisecond; c.Timeout = 5 * time.Second })
	waitSynced(t, healthy, m)
	e := &resEnv{m: m, healthy: healthy, d: d}

	// Writes flow throughout, as a host's would.
	ctx, stopWrites := context.WithCancel(context.Background())
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		v := strings.Repeat("w", 100)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if m.store.Set(fmt.Sprintf("w:%d", i%500), v) != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { stopWrites(); writer.Wait() })

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			fullBefore := healthy.r.Stats().FullSyncs
			w := watchMemory()
			tc.run(t, e)
			peak, alloc := w.end()
			t.Logf("heap +%.1f MiB at peak, %.1f MiB allocated", float64(peak)/MiB, float64(alloc)/MiB)
			assert.Less(t, peak, tc.heap, "heap growth at its peak")
			assert.Less(t, alloc, tc.alloc, "bytes allocated")
			// The hostile link's goroutines end; the cleanups of the
			// subtest (closing pipes) run first for the replica cases.
			t.Cleanup(func() {
				assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+3 }, 10*time.Second, 10*time.Millisecond,
					"goroutines: %d before, %d after", before, runtime.NumGoroutine())
			})
			// The master went on serving the healthy replica.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, healthy.r.WaitOffset(ctx, m.m.Offset()), "the healthy replica fell behind: %+v", healthy.r.Stats())
			assert.Equal(t, fullBefore, healthy.r.Stats().FullSyncs, "the healthy replica needed no new full resync")
		})
	}
	stopWrites()
	writer.Wait()
	waitSynced(t, healthy, m)
	assert.NoError(t, healthy.store.Err())
}

// snapshotOf returns the bytes of a psynctest.Store snapshot of data.
func snapshotOf(t *testing.T, data map[string]string) string {
	t.Helper()
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet})
	require.NoError(t, err)
	defer m.Close()
	s.SetMaster(m)
	for k, v := range data {
		require.NoError(t, s.Set(k, v))
	}
	sn, err := s.Snapshot(context.Background())
	require.NoError(t, err)
	defer sn.Release()
	var b strings.Builder
	_, err = sn.WriteTo(&b)
	require.NoError(t, err)
	return b.String()
}

// TestBugCloseWhileServing (fixed in e8c50b9): Master.Close raced a Serve
// reaching a full resync: joinFullSync called m.wg.Add(1) for the snapshot
// session without checking m.closed, and attach added the link's watchdog to
// m.wg after releasing m.mu, while Close could be in m.wg.Wait(): "Add
// called concurrently with Wait" under the race detector, else the panic
// "WaitGroup is reused before previous Wait has returned". Found by TestSim
// restarting a master while its replicas dialed it.
func TestBugCloseWhileServing(t *testing.T) {
	for i := 0; i < 300; i++ {
		s := psynctest.NewStore()
		m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet, FullSyncDelay: -1})
		require.NoError(t, err)
		s.SetMaster(m)
		var wg sync.WaitGroup
		for j := 0; j < 8; j++ {
			a, b := net.Pipe()
			wg.Add(2)
			go func() { defer wg.Done(); _ = m.Serve(context.Background(), b) }()
			go func() {
				defer wg.Done()
				_, _ = a.Write([]byte("PSYNC ? -1\r\n"))
				_, _ = io.Copy(io.Discard, a)
			}()
		}
		m.Close()
		wg.Wait()
	}
}
