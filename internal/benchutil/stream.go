package benchutil

import (
	"context"
	"errors"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
)

// StreamBatch is how many SETs a Stream feeds at a time.
const StreamBatch = 64

// Stream is the library stream that BenchmarkStreamTCP and bench/compare
// measure: a Master with a 64 MiB backlog fed batches of StreamBatch
// SetCommands, and a Replica with a NoopApplier parsing them over loopback
// TCP (a TCPServer). One goroutine feeds it.
type Stream struct {
	Master  *psync.Master
	Replica *psync.Replica

	srv    *TCPServer
	batch  []byte
	cancel context.CancelFunc
}

// StartStream starts a Stream and returns once the replica's link is up
// (within 10 s).
func StartStream() (*Stream, error) {
	s := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s, BacklogSize: 64 << 20, Logger: quiet})
	if err != nil {
		return nil, err
	}
	s.SetMaster(m)
	srv, err := ServeTCP(m)
	if err != nil {
		m.Close()
		return nil, err
	}
	r, err := psync.NewReplica(psync.ReplicaConfig{Dial: srv.Dial, Loader: s, Applier: NoopApplier{}, Logger: quiet})
	if err != nil {
		srv.Close()
		m.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &Stream{Master: m, Replica: r, srv: srv, batch: SetBatch(StreamBatch), cancel: cancel}
	go r.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !r.Stats().LinkUp; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			st.Close()
			return nil, errors.New("replica link not up")
		}
	}
	return st, nil
}

// Feed feeds one batch; when the replica is then more than 32 MiB behind, it
// waits until it is 16 MiB behind, so the stream stays within the backlog.
func (s *Stream) Feed(ctx context.Context) {
	m, r := s.Master, s.Replica
	m.Feed(s.batch)
	if m.Offset()-r.Offset() > 32<<20 {
		_ = r.WaitOffset(ctx, m.Offset()-16<<20)
	}
}

// CatchUp waits until the replica processed all that was fed.
func (s *Stream) CatchUp(ctx context.Context) error {
	return s.Replica.WaitOffset(ctx, s.Master.Offset())
}

// Close stops the replica, the server and the master.
func (s *Stream) Close() {
	s.cancel()
	s.srv.Close()
	s.Master.Close()
}
