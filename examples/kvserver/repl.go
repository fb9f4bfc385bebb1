package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/examples/kvserver/internal/kv"
	"github.com/psyncio/psync/rdb"
)

// This file wires the kv store to psync: the propagate hook that feeds the
// Master, the Snapshotter, and the replica role (Dial, Loader, Applier) with
// the REPLICAOF transitions.

// propagate is the store's propagate hook: it runs under the store lock, in
// commit order, for every write. It appends the command to the pending
// stream bytes, preceded by SELECT when the database differs from the last
// one fed; feedPending hands them to the Master before the lock is
// released. A command the store passes with its client's bytes (raw) is
// appended as they are: they are exactly the encoding of argv.
func (s *server) propagate(db int, argv [][]byte, raw []byte) {
	if !s.feeding {
		return
	}
	b := s.pending
	if db != s.streamDB {
		var num [20]byte
		b = psync.AppendArray(b, 2)
		b = psync.AppendBulkString(b, "SELECT")
		b = psync.AppendBulk(b, strconv.AppendInt(num[:0], int64(db), 10))
		s.streamDB = db
	}
	if raw != nil {
		b = append(b, raw...)
	} else {
		b = psync.AppendCommand(b, argv...)
	}
	s.pending = b
}

// feedPending is the store's propagate flush hook: at the end of every hold
// of the store lock that propagated writes (a client's pipeline, an expire
// cycle) it feeds them to the Master in one piece. So whenever the store
// lock is free, the Master's stream holds every committed write.
func (s *server) feedPending() {
	if len(s.pending) == 0 {
		return
	}
	s.m.Feed(s.pending)
	if cap(s.pending) <= 256<<10 {
		s.pending = s.pending[:0]
	} else {
		s.pending = nil
	}
}

// Snapshot implements psync.Snapshotter. The capture is cheap (the kv
// store's copy-on-write snapshot); the RDB is encoded later by the rdb
// adapter, alongside new writes.
//
// As master, the capture and the master offset are read in one hold of the
// store lock, the lock the propagate hook feeds under; the next command fed
// is then preceded by SELECT, as Redis resets its stream's selected db on a
// full resync, and repl-stream-db names the db selected before it.
//
// As replica (serving sub-replicas), the offset is that of the last command
// applied to the captured data, and repl-stream-db the db the upstream
// stream has selected: sub-replicas get the upstream's bytes unchanged.
func (s *server) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	var (
		snap     *kv.Snapshot
		pos      psync.Position
		streamDB int
	)
	s.roleMu.Lock()
	replica := s.replica != nil
	if !replica {
		snap = s.store.Snapshot(func() {
			pos = s.m.Position()
			streamDB = s.streamDB
			s.streamDB = -1
		})
	} else {
		snap = s.store.Snapshot(func() {
			// psync's contract for a replica's Snapshotter: the larger of
			// the last applied command's offset and the Master's (bytes
			// past the last command, PINGs, change no data; psync waits for
			// the backlog to catch up when Apply just returned).
			pos.Offset, streamDB = max(s.applied, s.m.Offset()), s.stream.DB
		})
		pos.ID = s.m.Position().ID
	}
	s.roleMu.Unlock()
	return rdb.NewSnapshot(rdb.SnapshotConfig{
		Offset:   pos.Offset,
		ReplID:   pos.ID,
		StreamDB: streamDB,
		Write:    snap.WriteEntries,
		Release:  snap.Release,
	}), nil
}

// replicaLink is the replica role: a psync.Replica following host:port.
type replicaLink struct {
	host string
	port int
	r    *psync.Replica

	cancel context.CancelFunc
	done   chan struct{}
}

func (rl *replicaLink) dial(ctx context.Context) (io.ReadWriteCloser, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(rl.host, strconv.Itoa(rl.port)))
}

// killLink cuts the current links to the master (CLIENT KILL TYPE master);
// the Replica reconnects and continues partially when it can. It reports
// whether a link was cut.
func (rl *replicaLink) killLink() bool { return rl.r.Disconnect() > 0 }

// stop ends the Replica's Run and waits for it.
func (rl *replicaLink) stop() {
	rl.cancel()
	<-rl.done
}

// linkState returns ROLE's replication state word for the link.
func (rl *replicaLink) linkState() string {
	switch rl.r.Stats().State {
	case "connect":
		return "connect"
	case "handshake":
		return "handshake"
	case "transfer":
		return "sync"
	case "connected":
		return "connected"
	}
	return "unknown"
}

var errAlreadyConnected = errors.New("already connected to specified master")

// becomeReplica switches to (or changes) the replica role, following
// host:port. Clients' writes get -READONLY from then on. The data stay until
// a full resync replaces them; the replication history is kept, so a
// demoted master, or a replica moved to a promoted sibling, continues
// partially when the new master's history allows (PSYNC2).
func (s *server) becomeReplica(host string, port int) error {
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	var pos psync.Position
	stream := kv.Client{}
	keepStream := false
	if old := s.replica; old != nil {
		if old.host == host && old.port == port {
			return errAlreadyConnected
		}
		old.stop()
		s.replica = nil
		pos = old.r.Position()
		// The stream client (its db, and a transaction the cut left open)
		// is kept: a partial resync continues the same bytes; a full one
		// resets it.
		keepStream = true
		// psync lets a Master belong to one Replica for its life; detach the
		// stopped one by promoting, then resume the old position below (the
		// new Replica resets the history to it).
		if _, err := s.m.Promote(); err != nil {
			return err
		}
	} else {
		s.store.SetReadOnly(true)
		s.store.Locked(func() {
			s.feeding = false
			stream.DB = max(s.streamDB, 0)
		})
	}
	rl := &replicaLink{host: host, port: port, done: make(chan struct{})}
	r, err := psync.NewReplica(psync.ReplicaConfig{
		Dial:          rl.dial,
		Loader:        s.loader(),
		Applier:       applier{s},
		Master:        s.m,
		Position:      pos,
		User:          s.cfg.MasterUser,
		Password:      s.cfg.MasterAuth,
		ListeningPort: s.cfg.Port,
		Timeout:       s.cfg.ReplTimeout,
		Logger:        s.log,
	})
	if err != nil {
		// Stay a master rather than half a replica.
		s.store.Locked(func() { s.feeding, s.streamDB = true, -1 })
		s.store.SetReadOnly(false)
		s.isReplica.Store(false)
		return err
	}
	if !keepStream {
		off := r.Offset()
		s.store.Locked(func() { s.applied, s.stream = off, stream })
	}
	rl.r = r
	ctx, cancel := context.WithCancel(s.ctx)
	rl.cancel = cancel
	go func() {
		defer close(rl.done)
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("replication stopped", "master", net.JoinHostPort(host, strconv.Itoa(port)), "err", err)
		}
	}()
	s.replica = rl
	s.isReplica.Store(true)
	s.log.Info("replica of "+net.JoinHostPort(host, strconv.Itoa(port)), "resume_from", r.Position().String())
	return nil
}

// becomeMaster leaves the replica role (REPLICAOF NO ONE): the link stops,
// the node is promoted in place (promote), and clients' writes feed the
// stream again.
func (s *server) becomeMaster() error {
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	rl := s.replica
	if rl == nil {
		return nil
	}
	rl.stop()
	s.replica = nil
	pos, err := s.promote()
	if err != nil {
		return err
	}
	// A transaction of the old master's stream left open by the cut was
	// discarded by the Replica when its link ended (psync applies DISCARD),
	// and never reached the backlog (blocks go there whole, at EXEC).
	s.store.Locked(func() { s.stream = kv.Client{} })
	// Feed first, then accept writes: no write may miss the stream. The
	// stream restarts with SELECT, as Redis's does after promotion.
	s.store.Locked(func() {
		s.feeding, s.streamDB = true, -1
	})
	s.store.SetReadOnly(false)
	s.isReplica.Store(false)
	s.log.Info("promoted to master", "replid", pos.ID, "offset", pos.Offset, "replid2", s.m.Stats().ReplID2)
	return nil
}

// promote is the seam for in-place promotion: psync's Master.Promote gives
// the history a fresh ID, keeps the old one as replid2 up to offset+1 and
// keeps the backlog, so the old master's other replicas pointed here
// continue partially.
func (s *server) promote() (psync.Position, error) { return s.m.Promote() }

// loader builds a new kv dataset from the master's RDB, installed on Commit.
func (s *server) loader() *rdb.Loader {
	return &rdb.Loader{
		Begin: func(info rdb.LoadInfo) (rdb.Builder, error) {
			s.log.Info("loading snapshot from master", "offset", info.Sync.Offset, "size", info.Sync.Size,
				"rdb_version", info.Version, "redis_ver", info.Aux["redis-ver"], "repl_stream_db", info.StreamDB)
			return &kvBuilder{s: s, ds: kv.NewDataset(s.cfg.Databases), db: info.StreamDB, off: info.Sync.Offset}, nil
		},
		Options: rdb.ReaderOptions{
			SkipUnsupported: true,
			OnSkip: func(db int, key []byte, t byte) {
				s.log.Warn("snapshot key of a type kvserver cannot hold skipped", "db", db, "key", string(key), "type", rdb.TypeName(t))
			},
		},
	}
}

// kvBuilder is the rdb.Builder of a kv.Dataset.
type kvBuilder struct {
	s    *server
	ds   *kv.Dataset
	db   int
	off  int64
	keys int
}

func (b *kvBuilder) Add(e *rdb.Entry) error {
	b.keys++
	return b.ds.Add(e)
}

func (b *kvBuilder) Commit() {
	s := b.s
	s.store.SwapAtomically(b.ds, func() { s.stream, s.applied = kv.Client{DB: b.db}, b.off })
	s.log.Info("snapshot loaded", "keys", b.keys, "offset", b.off)
}

func (b *kvBuilder) Discard() { b.ds = nil }

// SizeHint implements rdb.SizeHinter: the RDB's RESIZEDB hints presize the
// new dataset (the kv engine caps what a hint may allocate).
func (b *kvBuilder) SizeHint(db int, keys, expires uint64) { b.ds.Reserve(db, keys, expires) }

var _ rdb.SizeHinter = (*kvBuilder)(nil)

// applier applies the master's stream with the link's persistent client,
// in psync's batches: one hold of the store lock per batch (BeginBatch to
// EndBatch, all on psync's stream goroutine).
type applier struct{ s *server }

var _ psync.BatchApplier = applier{}

// BeginBatch implements psync.BatchApplier.
func (a applier) BeginBatch() {
	a.s.store.BeginApply()
	a.s.applyBatch = true
}

// EndBatch implements psync.BatchApplier.
func (a applier) EndBatch() {
	a.s.applyWindow()
	a.s.applyBatch = false
	a.s.store.EndApply()
}

// Apply implements psync.Applier. A command the engine refuses (unknown, or
// an error reply) is logged and skipped, not fatal, as the replica would
// otherwise stop following.
//
// Inside a batch, commands are copied into a window of up to
// kv.PrefetchWindow and applied together when it is full, the batch ends
// or a command too large to copy (over maxWindowed) comes, after
// kv.Store.Prefetch has loaded the keys they will look up: the
// cache misses of a window's keys then overlap instead of each stalling its
// command in turn. The batch holds the store lock throughout, and psync
// publishes the batch's offsets only after EndBatch, so nothing can observe
// a command received but not yet applied.
//
// Inside a MULTI block the engine only queues commands, so the applied
// offset stays before MULTI until EXEC, as Redis keeps its master client's
// offset: a sub-replica's snapshot taken meanwhile then lacks the whole
// transaction and its stream starts at MULTI, rather than at a queued
// command it would run outside any transaction.
func (a applier) Apply(cmd psync.Command) error {
	s := a.s
	if s.applyBatch && len(cmd.Raw) <= maxWindowed {
		if s.window.add(cmd) == kv.PrefetchWindow {
			s.applyWindow()
		}
		return nil
	}
	if s.applyBatch { // too large to be worth a copy: in order, after the window
		s.applyWindow()
		s.applyLocked(cmd.Args, cmd.Offset)
		return nil
	}
	err := s.store.ApplyAtomically(&s.stream, cmd.Args, func() {
		if !s.stream.InMulti() {
			s.applied = cmd.Offset
		}
	})
	if err != nil {
		s.log.Warn("replication stream: command skipped", "cmd", cmd.Name(), "offset", cmd.Offset, "err", err)
	}
	return nil
}

// applyWindow applies the window's commands, under the batch's hold of the
// store lock.
func (s *server) applyWindow() {
	w := &s.window
	s.store.Prefetch(s.stream.DB, w.args)
	for i, argv := range w.args {
		s.applyLocked(argv, w.offsets[i])
	}
	w.reset()
}

// applyLocked applies one command of a batch, which ends at offset.
func (s *server) applyLocked(argv [][]byte, offset int64) {
	if err := s.store.ApplyLocked(&s.stream, argv, nil); err != nil {
		c := psync.Command{Args: argv}
		s.log.Warn("replication stream: command skipped", "cmd", c.Name(), "offset", offset, "err", err)
	}
	if !s.stream.InMulti() {
		s.applied = offset
	}
}

// maxWindowed is the largest command (on the wire) copied into the window;
// a larger one is applied where it lies, after the window's commands.
const maxWindowed = 16 << 10

// applyWindow holds copies of commands waiting to be applied: their
// arguments, in one buffer reused from window to window.
type applyWindow struct {
	args    [][][]byte
	offsets []int64
	argv    [][]byte // the windows' argument lists, end to end
	buf     []byte   // their bytes
}

// add copies cmd into the window and returns the number of commands there.
func (w *applyWindow) add(cmd psync.Command) int {
	start := len(w.argv)
	for _, a := range cmd.Args {
		n := len(w.buf)
		w.buf = append(w.buf, a...)
		w.argv = append(w.argv, w.buf[n:len(w.buf):len(w.buf)])
	}
	w.args = append(w.args, w.argv[start:len(w.argv):len(w.argv)])
	w.offsets = append(w.offsets, cmd.Offset)
	return len(w.args)
}

// reset empties the window, keeping its memory: at most kv.PrefetchWindow
// commands of maxWindowed bytes, 512 KiB.
func (w *applyWindow) reset() {
	clear(w.args)
	clear(w.argv)
	w.args, w.offsets, w.argv, w.buf = w.args[:0], w.offsets[:0], w.argv[:0], w.buf[:0]
}

// waitAcks implements WAIT for the client whose last write ended at offset.
func (s *server) waitAcks(n int, timeout time.Duration, offset int64) int {
	ctx := s.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return s.m.WaitAcks(ctx, n, offset)
}
