package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
)

// This file measures, in this process, the machine's limits and psync's
// library paths: loopback TCP, copy, the stream from Master.Feed to a
// Replica, a 256 MiB snapshot transfer, and a cut link's way back.

var quiet = slog.New(slog.DiscardHandler)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	b := <-ch
	if b == nil {
		a.Close()
		return nil, nil, errors.New("accept failed")
	}
	return a, b, nil
}

// loopbackTCP returns the bytes/s of total bytes sent in 256 KiB writes over
// loopback TCP to a reader with a 256 KiB buffer.
func loopbackTCP(total int64) (float64, error) {
	a, b, err := tcpPair()
	if err != nil {
		return 0, err
	}
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var got int64
		for got < total {
			n, err := b.Read(buf)
			got += int64(n)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(buf)) {
		if _, err := a.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// copyBandwidth returns the bytes/s of copy() between two buffers of size
// bytes, repeated until total bytes are copied: 64 MiB measures memory
// bandwidth, 1 MiB stays in cache.
func copyBandwidth(size, total int) float64 {
	src := make([]byte, size)
	dst := make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault the pages in
	rounds := max(total/size, 1)
	start := time.Now()
	for range rounds {
		copy(dst, src)
	}
	return float64(rounds) * float64(size) / time.Since(start).Seconds()
}

type noopApplier struct{}

func (noopApplier) Apply(psync.Command) error { return nil }

// listen serves m on a loopback TCP listener and returns a Dial for
// replicas, and a stop function.
func listen(m *psync.Master) (func(context.Context) (io.ReadWriteCloser, error), func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.Serve(context.Background(), c)
		}
	}()
	dial := func(ctx context.Context) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	return dial, func() { ln.Close() }, nil
}

// streamTCP measures psync's stream as BenchmarkStreamTCP does: batches of
// 64 SETs of 144 bytes fed to a Master, parsed by a Replica with a no-op
// Applier over loopback TCP. It returns bytes/s.
func streamTCP(total int64) (float64, error) {
	setCmd := psync.AppendCommandString(nil, "SET", "key:000000123456", strings.Repeat("v", 100))
	if len(setCmd) != 144 {
		return 0, errors.New("SET is not 144 bytes")
	}
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, BacklogSize: 64 << 20, Logger: quiet})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	s.SetMaster(m)
	dial, stop, err := listen(m)
	if err != nil {
		return 0, err
	}
	defer stop()
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: s, Applier: noopApplier{}, Logger: quiet})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !r.Stats().LinkUp; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return 0, errors.New("replica link not up")
		}
	}
	batch := make([]byte, 0, 64*len(setCmd))
	for range 64 {
		batch = append(batch, setCmd...)
	}
	start := time.Now()
	base := m.Offset()
	for m.Offset()-base < total {
		m.Feed(batch)
		if m.Offset()-r.Offset() > 32<<20 {
			_ = r.WaitOffset(ctx, m.Offset()-16<<20)
		}
	}
	if err := r.WaitOffset(ctx, m.Offset()); err != nil {
		return 0, err
	}
	return float64(m.Offset()-base) / time.Since(start).Seconds(), nil
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

// Load reads the snapshot in 256 KiB reads, as loopbackTCP does, and drops
// it. (io.Copy to io.Discard would read 8 KiB at a time: io.Discard's
// ReadFrom brings its own small buffer.)
func (discardLoader) Load(_ context.Context, r io.Reader, _ psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	buf := make([]byte, 256<<10)
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			return discarded{}, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// snapshotTransfer measures a full resync of a size-byte snapshot over
// loopback TCP, from the replica's start to the loaded snapshot, as
// BenchmarkSnapshotTransfer does. It returns bytes/s.
func snapshotTransfer(size int64) (float64, error) {
	zs := &zeroSnapshotter{n: size}
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: zs, Logger: quiet, FullSyncDelay: -1})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	zs.m = m
	dial, stop, err := listen(m)
	if err != nil {
		return 0, err
	}
	defer stop()
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: discardLoader{}, Applier: noopApplier{}, Logger: quiet, SingleLink: true})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); r.Run(ctx) }()
	for r.Stats().FullSyncs == 0 {
		time.Sleep(100 * time.Microsecond)
		if time.Since(start) > time.Minute {
			cancel()
			return 0, errors.New("snapshot transfer took over a minute")
		}
	}
	d := time.Since(start)
	cancel()
	<-done
	return float64(size) / d.Seconds(), nil
}

// partialInProcess measures, n times, a cut link's way back to streaming as
// BenchmarkPartialResync does: the replica notices the cut, redials,
// handshakes, gets +CONTINUE and applies the next write. It returns the
// sorted durations.
func partialInProcess(transport string, n int) ([]time.Duration, error) {
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	s.SetMaster(m)
	var last io.Closer
	var dial func(context.Context) (io.ReadWriteCloser, error)
	if transport == "pipe" {
		d := psynctest.NewDialer(m)
		defer d.Close()
		dial = func(ctx context.Context) (io.ReadWriteCloser, error) {
			c, err := d.Dial(ctx)
			last = c
			return c, err
		}
	} else {
		tdial, stop, err := listen(m)
		if err != nil {
			return nil, err
		}
		defer stop()
		dial = func(ctx context.Context) (io.ReadWriteCloser, error) {
			c, err := tdial(ctx)
			last = c
			return c, err
		}
	}
	rs := psynctest.NewStore()
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: rs, Applier: rs, Logger: quiet})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	if err := s.Set("k", "v"); err != nil {
		return nil, err
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := r.WaitOffset(wctx, m.Offset()); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		last.Close()
		if err := s.Set("k", "v"); err != nil {
			return nil, err
		}
		if err := r.WaitOffset(wctx, m.Offset()); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	if got := r.Stats().PartialSyncs; got != int64(n) {
		return nil, errors.New("not every reconnection was a partial resync")
	}
	slices.Sort(out)
	return out, nil
}
