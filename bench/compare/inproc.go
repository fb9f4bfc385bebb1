package main

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/internal/benchutil"
	"github.com/psyncio/psync/psynctest"
)

// This file measures, in this process, the machine's limits and psync's
// library paths: loopback TCP, copy, the stream from Master.Feed to a
// Replica, a 256 MiB snapshot transfer, and a cut link's way back. The
// library paths are set up by internal/benchutil, as the package's
// benchmarks set them up.

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

// streamTCP measures psync's stream as BenchmarkStreamTCP does
// (benchutil.Stream): batches of 64 SETs of 144 bytes fed to a Master,
// parsed by a Replica with a no-op Applier over loopback TCP. It returns
// bytes/s.
func streamTCP(total int64) (float64, error) {
	st, err := benchutil.StartStream()
	if err != nil {
		return 0, err
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Now()
	base := st.Master.Offset()
	for st.Master.Offset()-base < total {
		st.Feed(ctx)
	}
	if err := st.CatchUp(ctx); err != nil {
		return 0, err
	}
	return float64(st.Master.Offset()-base) / time.Since(start).Seconds(), nil
}

// snapshotTransfer measures a full resync of a size-byte snapshot over
// loopback TCP, from the replica's start to the loaded snapshot, as
// BenchmarkSnapshotTransfer does. It returns bytes/s.
func snapshotTransfer(size int64) (float64, error) {
	m, err := benchutil.NewZeroMaster(size)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	srv, err := benchutil.ServeTCP(m)
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	d, err := benchutil.FullSync(srv.Dial)
	if err != nil {
		return 0, err
	}
	return float64(size) / d.Seconds(), nil
}

// partialInProcess measures, n times, a cut link's way back to streaming as
// BenchmarkPartialResync does: the replica notices the cut, redials,
// handshakes, gets +CONTINUE and applies the next write. It returns the
// sorted durations.
func partialInProcess(transport string, n int) ([]time.Duration, error) {
	var cut, stop func()
	link := func(m *psync.Master) (func(context.Context) (io.ReadWriteCloser, error), error) {
		if transport == "pipe" {
			d := psynctest.NewDialer(m)
			cut, stop = func() { d.Last().Close() }, d.Close
			return d.Dial, nil
		}
		srv, err := benchutil.ServeTCP(m)
		if err != nil {
			return nil, err
		}
		cut, stop = func() { srv.Last().Close() }, srv.Close
		return srv.Dial, nil
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	e, err := benchutil.StartResync(wctx, link)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		cut()
		if err := e.Write(wctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	if got := e.Replica.Stats().PartialSyncs; got != int64(n) {
		return nil, errors.New("not every reconnection was a partial resync")
	}
	slices.Sort(out)
	return out, nil
}
