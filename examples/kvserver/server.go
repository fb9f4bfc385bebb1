package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/examples/kvserver/internal/kv"
)

// server is one kvserver process: the kv store, one psync.Master that lives
// as long as the process, and the client connections.
//
// The Master holds the replication history (replid, offset, backlog) in both
// roles. As master, clients' writes feed it through the store's propagate
// hook. As replica, a psync.Replica attached to it (chained replication)
// feeds it the upstream's bytes, so sub-replicas can follow this node and
// REPLICAOF NO ONE promotes it in place, keeping offset and backlog.
type server struct {
	cfg   config
	log   *slog.Logger
	store *kv.Store
	m     *psync.Master
	runID string
	start time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Guarded by the store lock: the propagate hook, the snapshot capture
	// and kv.Store.Locked are the only places that touch them.
	feeding  bool   // master role: client writes are fed to m
	streamDB int    // db of the last SELECT fed; -1 forces one
	pending  []byte // stream bytes of this hold's writes, fed at its end

	roleMu    sync.Mutex   // serializes role changes and snapshot captures
	replica   *replicaLink // non-nil in the replica role
	isReplica atomic.Bool

	// Replica role, guarded by the store lock: each applied command and its
	// offset are one step (kv.Store.ApplyAtomically), so a sub-replica's
	// snapshot names the exact offset of its data.
	applied int64     // offset of the last command applied (or snapshot loaded)
	stream  kv.Client // the master link's client; its DB follows SELECT
	// applyBatch is true between the applier's BeginBatch and EndBatch;
	// only psync's stream goroutine reads or writes it, and the window.
	applyBatch bool
	window     applyWindow

	minReplicas atomic.Int64 // min-replicas-to-write
	maxLag      atomic.Int64 // min-replicas-max-lag, ns

	connMu sync.Mutex
	conns  map[int64]*conn
	ln     net.Listener
	nextID atomic.Int64

	totalConns  atomic.Int64
	totalCmds   atomic.Int64
	expiredKeys atomic.Int64
}

// newServer builds a server from cfg; Serve starts it.
func newServer(cfg config, log *slog.Logger) (*server, error) {
	var id [20]byte
	_, _ = rand.Read(id[:])
	s := &server{
		cfg:      cfg,
		log:      log,
		store:    kv.New(kv.Options{Databases: cfg.Databases}),
		runID:    hex.EncodeToString(id[:]),
		start:    time.Now(),
		streamDB: -1,
		feeding:  true,
		conns:    make(map[int64]*conn),
	}
	s.minReplicas.Store(int64(cfg.MinReplicasToWrite))
	s.maxLag.Store(int64(cfg.MinReplicasMaxLag))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	delay := cfg.DisklessSyncDelay
	if delay <= 0 {
		delay = -1 // psync: no wait
	}
	m, err := psync.NewMaster(psync.MasterConfig{
		Snapshotter:    s,
		BacklogSize:    int(cfg.BacklogSize),
		MaxLag:         limitOrNone(cfg.ReplicaBufferHard),
		SoftMaxLag:     limitOrNone(cfg.ReplicaBufferSoft),
		SoftMaxLagTime: cfg.ReplicaBufferSoftTime,
		Timeout:        cfg.ReplTimeout,
		PingPeriod:     cfg.PingPeriod,
		FullSyncDelay:  delay,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	s.m = m
	s.store.SetPropagate(s.propagate)
	s.store.SetPropagateFlush(s.feedPending)
	if cfg.ReplicaOfHost != "" {
		if err := s.becomeReplica(cfg.ReplicaOfHost, cfg.ReplicaOfPort); err != nil {
			m.Close()
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.expireLoop()
	return s, nil
}

// Serve accepts client connections on ln until Close.
func (s *server) Serve(ln net.Listener) error {
	s.connMu.Lock()
	s.ln = ln
	s.connMu.Unlock()
	s.log.Info("ready to accept connections", "addr", ln.Addr().String(), "role", s.roleName())
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.totalConns.Add(1)
		c := newConn(s, nc)
		s.connMu.Lock()
		s.conns[c.id] = c
		s.connMu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.connMu.Lock()
			delete(s.conns, c.id)
			s.connMu.Unlock()
		}()
	}
}

// Close stops accepting, drops every connection and replication link, and
// waits for the server's goroutines.
func (s *server) Close() error {
	s.cancel()
	s.connMu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for _, c := range s.conns {
		c.nc.Close()
	}
	s.connMu.Unlock()
	s.roleMu.Lock()
	if s.replica != nil {
		s.replica.stop()
	}
	s.roleMu.Unlock()
	s.m.Close()
	s.wg.Wait()
	return nil
}

func (s *server) roleName() string {
	if s.isReplica.Load() {
		return "slave"
	}
	return "master"
}

// expireLoop runs the active expire cycle ten times a second; the store
// does nothing in it while read-only (replica role).
func (s *server) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if !s.isReplica.Load() {
				s.expiredKeys.Add(int64(s.store.ExpireCycle()))
			}
		}
	}
}

// connections returns the open client connections.
func (s *server) connections() []*conn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	return out
}

// checkMinReplicas reports whether a write may run under
// min-replicas-to-write.
func (s *server) checkMinReplicas() bool {
	n := s.minReplicas.Load()
	if n <= 0 || s.isReplica.Load() {
		return true
	}
	// Redis compares whole seconds: an ACK 10.9 s old is within a lag of 10.
	return int64(s.m.GoodReplicas(time.Duration(s.maxLag.Load())+time.Second-1)) >= n
}

// limitOrNone maps a Redis output-buffer limit, where 0 means none, to
// psync's lag limits (no hard limit: as good as none; no soft limit: -1).
func limitOrNone(n int64) int64 {
	if n == 0 {
		return 1 << 62
	}
	return n
}
