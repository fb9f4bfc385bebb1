package benchutil

import (
	"context"
	"io"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
)

// Resync times a cut link's way back to streaming: after the caller cuts
// the replica's link, Write makes the replica notice the cut, redial,
// handshake, get +CONTINUE and apply the next write. The master and the
// replica keep their data in psynctest Stores.
type Resync struct {
	Master  *psync.Master
	Replica *psync.Replica

	store  *psynctest.Store
	cancel context.CancelFunc
}

// StartResync starts a master, then a replica that reaches it through the
// dial that link returns for it, and returns once the replica applied a
// first write. Close the Resync before what link opened.
func StartResync(ctx context.Context, link func(*psync.Master) (func(context.Context) (io.ReadWriteCloser, error), error)) (*Resync, error) {
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, Logger: quiet})
	if err != nil {
		return nil, err
	}
	s.SetMaster(m)
	dial, err := link(m)
	if err != nil {
		m.Close()
		return nil, err
	}
	rs := psynctest.NewStore()
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: dial, Loader: rs, Applier: rs, Logger: quiet})
	if err != nil {
		m.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	go r.Run(rctx)
	e := &Resync{Master: m, Replica: r, store: s, cancel: cancel}
	if err := e.Write(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Write sets a key on the master and waits until the replica applied it.
func (e *Resync) Write(ctx context.Context) error {
	if err := e.store.Set("k", "v"); err != nil {
		return err
	}
	return e.Replica.WaitOffset(ctx, e.Master.Offset())
}

// Close stops the replica and the master.
func (e *Resync) Close() {
	e.cancel()
	e.Master.Close()
}
