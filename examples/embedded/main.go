// Command embedded runs a psync master and two replicas in one process,
// linked by in-memory pipes, and narrates what replication does: the first
// full resync, streaming, a cut link that continues partially from the
// backlog, and a replica kept away until the backlog overflowed, which needs
// a full resync again.
//
//	go run ./examples/embedded
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
)

func main() {
	verbose := len(os.Args) > 1 && os.Args[1] == "-v"
	logger := slog.New(slog.DiscardHandler)
	if verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The master: a map-based store that applies each write and feeds it to
	// the replication stream under one lock, and a 16 KiB backlog.
	store := psynctest.NewStore()
	master, err := psync.NewMaster(psync.MasterConfig{Snapshotter: store, BacklogSize: 16 << 10, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer master.Close()
	store.SetMaster(master)
	write(store, "user", 100, 40)
	fmt.Printf("master: %d keys, offset %d, replid %s\n", store.Len(), master.Offset(), master.Position().ID)

	// Two replicas, each dialing the master over an in-memory pipe.
	dialer := psynctest.NewDialer(master)
	defer dialer.Close()
	gate := &gatedDial{dial: dialer.Dial}
	replicas := make([]*replica, 2)
	for i := range replicas {
		replicas[i] = startReplica(ctx, fmt.Sprintf("replica-%d", i+1), gate.Dial, logger)
	}
	for _, r := range replicas {
		r.waitFor(master)
	}
	report("after the first sync", master, replicas)

	write(store, "order", 200, 40)
	for _, r := range replicas {
		r.waitFor(master)
	}
	report("after streaming 200 writes", master, replicas)

	fmt.Println("\n-- cutting every link; 50 writes happen while the replicas reconnect")
	for _, c := range dialer.Conns() {
		c.Cut()
	}
	write(store, "cart", 50, 40)
	for _, r := range replicas {
		r.waitFor(master)
	}
	report("after the cut (the backlog covered the gap: partial resync)", master, replicas)

	fmt.Println("\n-- cutting every link and holding the replicas away while 1,000 writes overflow the 16 KiB backlog")
	gate.hold()
	for _, c := range dialer.Conns() {
		c.Cut()
	}
	write(store, "event", 1000, 40)
	// Until the master notices a cut link, it keeps what that link had not
	// sent yet (as Redis 7 keeps a replica's share of its replication
	// buffer), and a replica back before then could still continue from it.
	for deadline := time.Now().Add(10 * time.Second); master.Backlog().Retained() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatal("the master still keeps data for the cut links")
		}
	}
	gate.release()
	for _, r := range replicas {
		r.waitFor(master)
	}
	report("after the overflow (the gap left the backlog: full resync)", master, replicas)

	ms := master.Stats()
	fmt.Printf("\nmaster counted sync_full=%d sync_partial_ok=%d sync_partial_err=%d\n", ms.FullSyncs, ms.PartialOK, ms.PartialErr)
	for _, r := range replicas {
		if r.store.Digest() != store.Digest() {
			log.Fatalf("%s diverged", r.name)
		}
	}
	fmt.Println("every replica holds exactly the master's data")
}

type replica struct {
	name  string
	store *psynctest.Store
	r     *psync.Replica
}

func startReplica(ctx context.Context, name string, dial func(context.Context) (io.ReadWriteCloser, error), logger *slog.Logger) *replica {
	store := psynctest.NewStore()
	r, err := psync.NewReplica(psync.ReplicaConfig{
		Dial: dial, Loader: store, Applier: store,
		MinBackoff: 10 * time.Millisecond, Logger: logger.With("node", name),
	})
	if err != nil {
		log.Fatal(err)
	}
	go r.Run(ctx)
	return &replica{name: name, store: store, r: r}
}

func (r *replica) waitFor(m *psync.Master) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.r.WaitOffset(ctx, m.Offset()); err != nil {
		log.Fatalf("%s did not catch up: %v", r.name, err)
	}
}

func write(s *psynctest.Store, prefix string, n, size int) {
	v := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		if err := s.Set(fmt.Sprintf("%s:%d", prefix, i), v); err != nil {
			log.Fatal(err)
		}
	}
}

func report(when string, m *psync.Master, rs []*replica) {
	fmt.Printf("\n%s: master offset %d\n", when, m.Offset())
	for _, r := range rs {
		st := r.r.Stats()
		fmt.Printf("  %s: offset %d, %d keys, full resyncs %d, partial resyncs %d\n",
			r.name, st.Offset, r.store.Len(), st.FullSyncs, st.PartialSyncs)
	}
}

// gatedDial can hold new connections back, to keep replicas away while the
// backlog overflows.
type gatedDial struct {
	dial func(context.Context) (io.ReadWriteCloser, error)
	mu   sync.Mutex
	ch   chan struct{}
}

func (g *gatedDial) hold() {
	g.mu.Lock()
	g.ch = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedDial) release() {
	g.mu.Lock()
	close(g.ch)
	g.ch = nil
	g.mu.Unlock()
}

func (g *gatedDial) Dial(ctx context.Context) (io.ReadWriteCloser, error) {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.dial(ctx)
}
