package benchutil

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/psyncio/psync"
)

// ZeroSnapshotter is a psync.Snapshotter whose snapshots are Size zero bytes
// that cost nothing to produce, labelled with Master's offset when taken. Set
// Master before the first full resync.
type ZeroSnapshotter struct {
	Size   int64
	Master *psync.Master
}

// Snapshot returns a snapshot of z.Size zero bytes at the master's offset.
func (z *ZeroSnapshotter) Snapshot(context.Context) (psync.Snapshot, error) {
	return zeroSnapshot{n: z.Size, off: z.Master.Offset()}, nil
}

// zeroSnapshot is n zero bytes at offset off, written in 1 MiB writes.
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

// DiscardLoader is a psync.Loader that reads a snapshot and drops it. It
// reads in 256 KiB reads, as a loopback TCP reader measuring the link would;
// io.Copy to io.Discard would read 8 KiB at a time (io.Discard's ReadFrom
// brings its own small buffer). It is safe for concurrent use.
type DiscardLoader struct{}

// Load reads r to its end and returns a snapshot whose Commit and Discard do
// nothing.
func (DiscardLoader) Load(_ context.Context, r io.Reader, _ psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
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

type discarded struct{}

func (discarded) Commit()  {}
func (discarded) Discard() {}

// NewZeroMaster returns a Master whose full resyncs send a snapshot of size
// zero bytes and start at once (no FullSyncDelay).
func NewZeroMaster(size int64) (*psync.Master, error) {
	zs := &ZeroSnapshotter{Size: size}
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: zs, Logger: quiet, FullSyncDelay: -1})
	if err != nil {
		return nil, err
	}
	zs.Master = m
	return m, nil
}

// FullSync runs a new single-link replica that reaches its master through
// dial, with a DiscardLoader, until it loaded its first snapshot, then stops
// it. It returns the time from the replica's start to the loaded snapshot,
// and gives up after a minute.
func FullSync(dial func(context.Context) (io.ReadWriteCloser, error)) (time.Duration, error) {
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: DiscardLoader{}, Applier: NoopApplier{}, Logger: quiet, SingleLink: true})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for r.Stats().FullSyncs == 0 {
		time.Sleep(100 * time.Microsecond)
		if time.Since(start) > time.Minute {
			return 0, errors.New("snapshot transfer took over a minute")
		}
	}
	return time.Since(start), nil
}
