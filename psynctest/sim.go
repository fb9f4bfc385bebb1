package psynctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psyncio/psync"
)

// This file holds RunSim, a seeded simulation of a replication topology under
// faults, in the spirit of a fuzzy transport: a master, replicas and
// optionally a chain run over in-memory links that a schedule drawn from one
// seed cuts, stalls, slows and resumes, while the master takes random writes,
// replicas restart from their persisted positions and get promoted. When the
// schedule ends the faults stop, every node must catch up, and the run checks
// what a user relies on: same data, same offset and replication ID
// everywhere, no command applied twice, offsets that never went back, and no
// full resync where the backlog covered the replica.
//
// The seed fixes the schedule (which faults, writes and promotions, in which
// order, with which sizes and pauses), not the interleaving of the
// goroutines, so a failing seed usually, not always, fails again.

// SimLinks selects how replicas take a full resync.
type SimLinks int

const (
	// SimLinksRandom draws SingleLink per replica from the seed.
	SimLinksRandom SimLinks = iota
	// SimLinksSingle: every replica takes the stream after the snapshot on
	// the same link (ReplicaConfig.SingleLink), as Redis does.
	SimLinksSingle
	// SimLinksDual: every replica opens a second link during a full resync.
	SimLinksDual
)

// SimConfig describes one simulated run. Zero fields take the default
// noted; DefaultSimConfig draws a varied configuration from a seed.
type SimConfig struct {
	// Seed fixes the schedule. The same seed replays the same schedule.
	Seed uint64
	// Replicas is the number of replicas of the master. Default 2.
	Replicas int
	// Chain makes the first replica serve a sub-replica through its own
	// Master (chained replication).
	Chain bool
	// Steps is the number of scheduled events (writes, faults, restarts,
	// promotions). Default 40.
	Steps int
	// BacklogSize is every master's backlog size; 0 draws one per node from
	// the seed, from 24 bytes (smaller than one command) to 32 KiB.
	BacklogSize int
	// Links selects single or dual links for full resyncs.
	Links SimLinks
	// Promotions enables promotions (REPLICAOF NO ONE of a replica with a
	// Master, the others repointed to it, the old master demoted to a
	// replica of it, sometimes after writes it alone took). Restarts
	// enables restarts of replicas from their persisted Position (with a
	// new Master when they had one) and of the master from its own.
	Promotions bool
	Restarts   bool
	// Diskless hides the snapshot's size from the masters, so they send it
	// with the $EOF:<mark> framing.
	Diskless bool
	// Timeout is the masters' and replicas' link timeout. Default 1 s.
	Timeout time.Duration
	// PingPeriod is the masters' PingPeriod; 0 means no stream PINGs.
	PingPeriod time.Duration
	// GetAcks schedules REPLCONF GETACK in the stream (Master.RequestAck).
	GetAcks bool
	// SettleTimeout bounds the wait for every node to catch up once the
	// faults stop, and (halved) for every goroutine to end after the run.
	// Default 60 s: generous, so that only a hang fails on a loaded machine.
	SettleTimeout time.Duration
	// Rerun is printed with a failure, to tell how to replay the seed alone.
	Rerun string

	// sabotage makes the run misbehave on purpose, so the self-tests can
	// show that the checks fail.
	sabotage sabotage
}

type sabotage int

const (
	sabotageNone         sabotage = iota
	sabotageStrayWrite            // a replica's store gets a write the master never made
	sabotageForgetReplID          // main links ask PSYNC with a wrong replid
)

// DefaultSimConfig returns a configuration whose topology, link mode and
// events are drawn from seed, so a range of seeds covers single and dual
// links, chains, promotions, restarts and both snapshot framings.
func DefaultSimConfig(seed uint64) SimConfig {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return SimConfig{
		Seed:       seed,
		Replicas:   1 + r.IntN(3),
		Chain:      r.IntN(2) == 0,
		Steps:      30 + r.IntN(30),
		Links:      SimLinks(r.IntN(3)),
		Promotions: r.IntN(3) > 0,
		Restarts:   r.IntN(3) > 0,
		Diskless:   r.IntN(4) == 0,
		PingPeriod: time.Duration(r.IntN(3)/2) * time.Duration(30+r.IntN(200)) * time.Millisecond,
		GetAcks:    r.IntN(3) > 0,
	}
}

// SimResult counts what a run did and saw.
type SimResult struct {
	Seed     uint64
	Duration time.Duration

	// Events of the schedule.
	Writes, Cuts, CutsAtByte, Stalls, Trickles, Promotions, Restarts, MasterRestarts int
	// Dials counts every link a replica opened (a full resync on two links
	// dials twice).
	Dials int

	// FullSyncs and PartialSyncs count the +FULLRESYNC and +CONTINUE replies
	// masters wrote; Refused the -NOMASTERLINK ones. Eligible counts the
	// PSYNCs that the backlog covered from the moment the request reached the
	// master to its reply; CoveredFull those of them answered with a full
	// resync, each a failure.
	FullSyncs, PartialSyncs, Refused, Eligible, CoveredFull int
	// The same, as every Master and Replica counted them (MasterStats
	// FullSyncs and PartialOK, ReplicaStats FullSyncs and PartialSyncs).
	MasterFullSyncs, MasterPartialOK, ReplicaFullSyncs, ReplicaPartialSyncs int64
	// OffsetRegressions counts full resyncs that moved a replica's offset
	// back, legitimate only for a replica that was ahead of a promoted one.
	OffsetRegressions int
}

func (r SimResult) String() string {
	return fmt.Sprintf("seed=%d in %v: %d writes, %d cuts (+%d at a byte), %d stalls, %d trickles, %d promotions, %d restarts (+%d master), %d dials; "+
		"resyncs: %d full, %d partial (%d eligible, %d covered but full), %d refused; masters counted %d full %d partial, replicas %d full %d partial; %d offset regressions",
		r.Seed, r.Duration.Round(time.Millisecond), r.Writes, r.Cuts, r.CutsAtByte, r.Stalls, r.Trickles, r.Promotions, r.Restarts, r.MasterRestarts, r.Dials,
		r.FullSyncs, r.PartialSyncs, r.Eligible, r.CoveredFull, r.Refused, r.MasterFullSyncs, r.MasterPartialOK, r.ReplicaFullSyncs, r.ReplicaPartialSyncs, r.OffsetRegressions)
}

// Add sums o into r (Seed and Duration excepted: Duration adds up).
func (r *SimResult) Add(o SimResult) {
	r.Duration += o.Duration
	r.Writes += o.Writes
	r.Cuts += o.Cuts
	r.CutsAtByte += o.CutsAtByte
	r.Stalls += o.Stalls
	r.Trickles += o.Trickles
	r.Promotions += o.Promotions
	r.Restarts += o.Restarts
	r.MasterRestarts += o.MasterRestarts
	r.Dials += o.Dials
	r.FullSyncs += o.FullSyncs
	r.PartialSyncs += o.PartialSyncs
	r.Refused += o.Refused
	r.Eligible += o.Eligible
	r.CoveredFull += o.CoveredFull
	r.MasterFullSyncs += o.MasterFullSyncs
	r.MasterPartialOK += o.MasterPartialOK
	r.ReplicaFullSyncs += o.ReplicaFullSyncs
	r.ReplicaPartialSyncs += o.ReplicaPartialSyncs
	r.OffsetRegressions += o.OffsetRegressions
}

// RunSim runs one simulation and reports every broken invariant with
// t.Errorf, followed by the schedule, the nodes' state, the last library
// logs and cfg.Rerun. It returns when every goroutine it started has ended.
func RunSim(t testing.TB, cfg SimConfig) (res SimResult) {
	t.Helper()
	if cfg.Replicas <= 0 {
		cfg.Replicas = 2
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 40
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = time.Minute
	}
	s := &sim{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x51e0)), logs: &logRing{max: 300}}
	s.res.Seed = cfg.Seed
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.start = time.Now()
	defer func() {
		s.teardown()
		s.statsMu.Lock()
		s.res.Duration = time.Since(s.start)
		res = s.res
		s.statsMu.Unlock()
		if s.hasFailed() {
			s.dump(res)
		}
	}()
	s.build()
	for i := 0; i < cfg.Steps && !s.hasFailed(); i++ {
		s.step(i)
	}
	s.calm()
	s.settle()
	s.count()
	return
}

// sim is one run.
type sim struct {
	t      testing.TB
	cfg    SimConfig
	rng    *rand.Rand
	ctx    context.Context // ends at teardown; bounds every Serve
	cancel context.CancelFunc
	logs   *logRing
	failed bool // guarded by errMu
	res    SimResult
	trace  []string
	start  time.Time

	stalls   []stalled // stalled links and when to resume them
	trickles []stalled // trickling links and when to stop

	mu      sync.Mutex // guards the topology: up, m, conns, closing, masters
	nodes   []*simNode
	top     *simNode
	closing bool
	masters []*psync.Master // every Master created, for their stats
	serves  sync.WaitGroup

	promoted atomic.Bool // a promotion happened: offsets may legitimately go back

	statsMu sync.Mutex // guards the PSYNC counts in res
	errMu   sync.Mutex
}

// simNode is one store with its Master (the top, and replicas that can be
// promoted or serve sub-replicas) and its Replica (all but the top).
type simNode struct {
	name     string
	store    *Store
	app      *simApplier
	m        *psync.Master
	backlog  int
	single   bool
	up       *simNode
	inst     *simInst // the running Replica, nil on the top
	replicas []*psync.Replica
	conns    []*simConn

	// blocked refuses new dials while m is being replaced.
	blocked bool

	// sideAsks holds what a second link asks after each +FULLRESYNC sent
	// to the node: the snapshot's position + 1.
	expectMu sync.Mutex
	sideAsks map[psync.Position]bool
}

// simInst is one Replica of a node and its Run.
type simInst struct {
	r      *psync.Replica
	cancel context.CancelFunc
	done   chan error
}

func (s *sim) errorf(format string, args ...any) {
	s.t.Helper()
	s.errMu.Lock()
	s.failed = true
	s.errMu.Unlock()
	s.t.Errorf("sim seed %d: "+format, append([]any{s.cfg.Seed}, args...)...)
}

func (s *sim) hasFailed() bool {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.failed
}

// tracef records a scheduled event; only the scheduling goroutine calls it.
func (s *sim) tracef(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%5dms ", time.Since(s.start).Milliseconds())+fmt.Sprintf(format, args...))
}

func (s *sim) logger(name string) *slog.Logger {
	return slog.New(&logHandler{ring: s.logs}).With("node", name)
}

func (s *sim) backlogSize() int {
	if s.cfg.BacklogSize > 0 {
		return s.cfg.BacklogSize
	}
	switch s.rng.IntN(4) {
	case 0:
		return 24 + s.rng.IntN(300) // smaller than many commands
	case 1:
		return 1<<10 + s.rng.IntN(8<<10)
	default:
		return 16<<10 + s.rng.IntN(16<<10)
	}
}

func (s *sim) newMaster(n *simNode, pos psync.Position) *psync.Master {
	var snap psync.Snapshotter = n.store
	if s.cfg.Diskless {
		snap = unsizedSnapshotter{n.store}
	}
	cfg := psync.MasterConfig{
		Snapshotter:   snap,
		BacklogSize:   n.backlog,
		Position:      pos,
		Timeout:       s.cfg.Timeout,
		PingPeriod:    -1,
		FullSyncDelay: -1,
		Logger:        s.logger(n.name),
	}
	if s.cfg.PingPeriod > 0 {
		cfg.PingPeriod = s.cfg.PingPeriod
	}
	if s.rng.IntN(2) == 0 {
		cfg.FullSyncDelay = time.Duration(s.rng.IntN(5)) * time.Millisecond
	}
	if s.rng.IntN(4) == 0 {
		cfg.MaxLag = int64(n.backlog/4 + s.rng.IntN(n.backlog))
	}
	m, err := psync.NewMaster(cfg)
	if err != nil {
		s.t.Fatalf("sim seed %d: NewMaster: %v", s.cfg.Seed, err)
	}
	n.store.SetMaster(m)
	s.mu.Lock()
	n.m = m
	s.masters = append(s.masters, m)
	s.mu.Unlock()
	return m
}

// build creates the topology: the top, its replicas (some able to be
// promoted, the first serving a sub-replica with Chain).
func (s *sim) build() {
	top := &simNode{name: "master", store: NewStore(), backlog: s.backlogSize()}
	s.newMaster(top, psync.Position{})
	s.top = top
	s.nodes = append(s.nodes, top)
	// Some data before the replicas arrive.
	for i, n := 0, s.rng.IntN(20); i < n; i++ {
		s.write()
	}
	for i := 0; i < s.cfg.Replicas; i++ {
		withMaster := (i == 0 && (s.cfg.Chain || s.cfg.Promotions)) || s.rng.IntN(2) == 0
		n := s.addReplica(fmt.Sprintf("r%d", i+1), top, withMaster)
		if i == 0 && s.cfg.Chain {
			s.addReplica("r1.leaf", n, s.rng.IntN(2) == 0)
		}
	}
	s.tracef("built: %s", s.describe())
}

func (s *sim) addReplica(name string, up *simNode, withMaster bool) *simNode {
	n := &simNode{name: name, store: NewStore(), up: up, backlog: s.backlogSize()}
	n.app = &simApplier{s: s, node: n, last: -1}
	switch s.cfg.Links {
	case SimLinksSingle:
		n.single = true
	case SimLinksRandom:
		n.single = s.rng.IntN(2) == 0
	}
	if withMaster {
		s.newMaster(n, psync.Position{})
	}
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.mu.Unlock()
	s.startReplica(n, psync.Position{})
	return n
}

func (s *sim) startReplica(n *simNode, pos psync.Position) {
	inst := &simInst{done: make(chan error, 1)}
	var app psync.Applier = n.app
	if s.cfg.Seed%2 == 0 {
		app = simBatchApplier{n.app}
	}
	cfg := psync.ReplicaConfig{
		Dial:       s.dialer(n, inst),
		Loader:     n.app,
		Applier:    app,
		Master:     n.m,
		Position:   pos,
		Timeout:    s.cfg.Timeout,
		AckPeriod:  s.cfg.Timeout / 5,
		MinBackoff: time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		SingleLink: n.single,
		Logger:     s.logger(n.name),
	}
	r, err := psync.NewReplica(cfg)
	if err != nil {
		s.t.Fatalf("sim seed %d: NewReplica %s: %v", s.cfg.Seed, n.name, err)
	}
	inst.r = r
	ctx, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	s.mu.Lock()
	n.inst = inst
	n.replicas = append(n.replicas, r)
	s.mu.Unlock()
	go func() { inst.done <- r.Run(ctx) }()
}

// stopReplica ends a node's Run and reports an early end.
func (s *sim) stopReplica(n *simNode) {
	inst := n.inst
	inst.cancel()
	if err := <-inst.done; err != nil && !errors.Is(err, context.Canceled) {
		s.errorf("%s: Run returned %v", n.name, err)
	}
	inst.done <- nil // later stops and the teardown see it ended
}

// dialer returns n's Dial: a pipe to its upstream's current Master, wrapped
// on the replica's side for faults and on both sides to watch the PSYNC.
func (s *sim) dialer(n *simNode, inst *simInst) func(context.Context) (io.ReadWriteCloser, error) {
	return func(ctx context.Context) (io.ReadWriteCloser, error) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return nil, psync.ErrClosed
		}
		up := n.up
		if up == nil || up.m == nil || up.blocked {
			s.mu.Unlock()
			return nil, errors.New("psynctest: sim node has no upstream")
		}
		m := up.m
		a, b := net.Pipe()
		rec := &linkRec{s: s, node: n, inst: inst, up: up, m: m}
		c := &simConn{Conn: Wrap(a), rec: rec}
		live := n.conns[:0]
		for _, old := range n.conns {
			if !old.Closed() {
				live = append(live, old)
			}
		}
		n.conns = append(live, c)
		s.serves.Add(1)
		s.mu.Unlock()
		s.statsMu.Lock()
		s.res.Dials++
		s.statsMu.Unlock()
		go func() {
			defer s.serves.Done()
			_ = m.Serve(s.ctx, &masterEnd{Conn: b, rec: rec})
		}()
		return c, nil
	}
}

// linkRec follows one link's PSYNC: the request as the replica wrote it, the
// master's state once it had read it, and its reply.
type linkRec struct {
	s    *sim
	node *simNode
	inst *simInst
	up   *simNode
	m    *psync.Master

	mu      sync.Mutex
	req     psync.SyncRequest
	hasReq  bool
	before  psync.MasterState
	replied bool
}

func masterState(m *psync.Master) psync.MasterState {
	st := m.Stats()
	return psync.MasterState{ReplID: st.ReplID, ReplID2: st.ReplID2, SecondOffset: st.SecondOffset,
		Offset: st.Offset, BacklogFirst: st.BacklogFirst, HasBacklog: true}
}

var psyncPrefix = []byte("*3\r\n$5\r\nPSYNC\r\n")

// request is called with what the replica writes, before the master can
// read it. The master's state is taken then: the check needs one state from
// before the decision and one from after it (see reply).
func (l *linkRec) request(p []byte) {
	// PSYNC may come in the same write as the rest of the handshake.
	i := bytes.Index(p, psyncPrefix)
	if i < 0 {
		return
	}
	p = p[i:]
	cmd, err := psync.NewCommandReader(bytes.NewReader(p), psync.Limits{}, false).ReadCommand()
	if err != nil {
		l.s.errorf("%s: unreadable PSYNC %q: %v", l.node.name, p, err)
		return
	}
	req, err := psync.ParseSyncRequest(cmd.Args)
	if err != nil {
		l.s.errorf("%s: bad PSYNC %q: %v", l.node.name, p, err)
		return
	}
	st := masterState(l.m)
	l.mu.Lock()
	l.req, l.hasReq, l.before = req, true, st
	l.mu.Unlock()
	if req.ReplID == "" {
		return
	}
	// A main link asks for the replica's processed offset + 1 in its history;
	// the second link of a full resync asks for the snapshot's.
	n := l.node
	n.expectMu.Lock()
	side := n.sideAsks[psync.Position{ID: req.ReplID, Offset: req.Offset}]
	n.expectMu.Unlock()
	if side {
		return
	}
	if pos := l.inst.r.Position(); pos.ID != req.ReplID || pos.Offset+1 != req.Offset {
		l.s.errorf("%s: PSYNC %s %d, but the replica is at %v", n.name, req.ReplID, req.Offset, pos)
	}
}

// reply is called with the master's first reply line to the PSYNC, before
// the replica can read it.
func (l *linkRec) reply(p []byte) {
	var kind string
	switch {
	case bytes.HasPrefix(p, []byte("+FULLRESYNC ")):
		kind = "full"
	case bytes.HasPrefix(p, []byte("+CONTINUE")):
		kind = "partial"
	case bytes.HasPrefix(p, []byte("-NOMASTERLINK")):
		kind = "refused"
	default:
		return
	}
	l.mu.Lock()
	if l.replied || !l.hasReq {
		l.mu.Unlock()
		return
	}
	l.replied = true
	req, before := l.req, l.before
	l.mu.Unlock()
	after := masterState(l.m)
	s := l.s
	// The backlog covered the request throughout if it did before the master
	// read it and still did at its reply: the offset only grows,
	// the first byte held only moves forward, and IDs are never reused.
	eligible := psync.Decide(before, req).Partial && psync.Decide(after, req).Partial &&
		before.ReplID == after.ReplID && before.ReplID2 == after.ReplID2
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if eligible && kind != "refused" {
		s.res.Eligible++
	}
	switch kind {
	case "full":
		s.res.FullSyncs++
		if eligible {
			s.res.CoveredFull++
			s.errorf("%s: full resync though the backlog covered PSYNC %s %d: master %s before %+v, at the reply %+v",
				l.node.name, req.ReplID, req.Offset, l.up.name, before, after)
		}
		line := p
		if i := bytes.IndexByte(line, '\r'); i >= 0 {
			line = line[:i]
		}
		if f := strings.Fields(string(line)); len(f) == 3 {
			if off, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				l.node.expectMu.Lock()
				if l.node.sideAsks == nil {
					l.node.sideAsks = make(map[psync.Position]bool)
				}
				l.node.sideAsks[psync.Position{ID: psync.ReplID(f[1]), Offset: off + 1}] = true
				l.node.expectMu.Unlock()
			}
		}
	case "partial":
		s.res.PartialSyncs++
	case "refused":
		s.res.Refused++
	}
}

// simConn is the replica's end of a link: a Conn that can also trickle
// (small reads with a pause before each).
type simConn struct {
	*Conn
	rec   *linkRec
	pause atomic.Int64 // ns before each read while trickling
	chunk atomic.Int64 // max bytes per read while trickling
}

func (c *simConn) Read(p []byte) (int, error) {
	if d := c.pause.Load(); d > 0 {
		time.Sleep(time.Duration(d))
		if k := int(c.chunk.Load()); k > 0 && len(p) > k {
			p = p[:k]
		}
	}
	return c.Conn.Read(p)
}

func (c *simConn) Write(p []byte) (int, error) {
	p, orig := c.sabotage(p)
	c.rec.request(orig)
	return c.Conn.Write(p)
}

func (c *simConn) sabotage(p []byte) (sent, orig []byte) {
	at := bytes.Index(p, psyncPrefix)
	if c.rec.s.cfg.sabotage != sabotageForgetReplID || at < 0 || bytes.Contains(p[at:], []byte("\r\n$1\r\n?\r\n")) {
		return p, p
	}
	// Replace the replid (40 hex characters after "$40\r\n") with another.
	i := bytes.Index(p[at:], []byte("$40\r\n"))
	if i < 0 {
		return p, p
	}
	q := bytes.Clone(p)
	copy(q[at+i+5:], psync.NewReplID())
	return q, p
}

func (c *simConn) trickle(pause time.Duration, chunk int) {
	c.chunk.Store(int64(chunk))
	c.pause.Store(int64(pause))
}

// masterEnd is the master's end of a link; it sees the master's reply to
// PSYNC before the replica does.
type masterEnd struct {
	net.Conn
	rec *linkRec
}

func (c *masterEnd) Write(p []byte) (int, error) {
	// The reply to PSYNC may follow the handshake's replies in one write.
	for q := p; len(q) > 0; {
		if q[0] == '+' || q[0] == '-' {
			c.rec.reply(q)
		}
		i := bytes.IndexByte(q, '\n')
		if i < 0 || (q[0] != '+' && q[0] != '-' && q[0] != '\n') {
			break
		}
		q = q[i+1:]
	}
	return c.Conn.Write(p)
}

// unsizedSnapshotter hides the snapshot's Len: the master then sends the
// diskless $EOF:<mark> framing.
type unsizedSnapshotter struct{ s psync.Snapshotter }

func (u unsizedSnapshotter) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	sn, err := u.s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return struct{ psync.Snapshot }{sn}, nil
}

// simApplier wraps a node's Store: offsets handed to Apply must increase,
// and a snapshot may only move the offset back after a promotion.
type simApplier struct {
	s    *sim
	node *simNode
	mu   sync.Mutex
	last int64
}

func (a *simApplier) Apply(cmd psync.Command) error {
	a.mu.Lock()
	if a.last >= 0 && cmd.Offset <= a.last {
		a.s.errorf("%s: applied %s at offset %d after offset %d: offsets went back", a.node.name, cmd.Name(), cmd.Offset, a.last)
	}
	a.last = cmd.Offset
	a.mu.Unlock()
	return a.node.store.Apply(cmd)
}

// simBatchApplier is a simApplier that applies in psync's batches (seeds
// of even number use it, odd ones the plain Applier).
type simBatchApplier struct{ *simApplier }

func (a simBatchApplier) BeginBatch() { a.node.store.BeginBatch() }
func (a simBatchApplier) EndBatch()   { a.node.store.EndBatch() }

func (a *simApplier) Load(ctx context.Context, r io.Reader, info psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	ld, err := a.node.store.Load(ctx, r, info)
	if err != nil {
		return nil, err
	}
	return &simLoaded{LoadedSnapshot: ld, a: a, off: info.Offset}, nil
}

type simLoaded struct {
	psync.LoadedSnapshot
	a   *simApplier
	off int64
}

func (l *simLoaded) Commit() {
	a := l.a
	a.mu.Lock()
	if a.last >= 0 && l.off < a.last {
		if a.s.promoted.Load() {
			a.s.statsMu.Lock()
			a.s.res.OffsetRegressions++
			a.s.statsMu.Unlock()
		} else {
			a.s.errorf("%s: loaded a snapshot at offset %d after offset %d with no promotion: offsets went back", a.node.name, l.off, a.last)
		}
	}
	a.last = l.off
	a.mu.Unlock()
	l.LoadedSnapshot.Commit()
}

// write makes one random write on the top.
func (s *sim) write() {
	st := s.top.store
	key := "k" + strconv.Itoa(s.rng.IntN(32))
	var err error
	switch op := s.rng.IntN(10); {
	case op < 6:
		err = st.Set(key, s.value())
	case op < 7:
		err = st.Del(key, "k"+strconv.Itoa(s.rng.IntN(32)))
	case op < 8:
		err = st.Exec("INCRBY", "n"+strconv.Itoa(s.rng.IntN(8)), strconv.Itoa(s.rng.IntN(1000)-500))
	default:
		if v, _ := st.Get(key); len(v) < 2<<10 {
			v := s.value()
			err = st.Exec("APPEND", key, v[:min(64, len(v))])
		} else {
			err = st.Del(key)
		}
	}
	if err != nil {
		s.errorf("write on %s: %v", s.top.name, err)
	}
	s.res.Writes++
}

// value draws a value size: mostly small, sometimes larger than the
// backlog.
func (s *sim) value() string {
	var n int
	switch p := s.rng.IntN(100); {
	case p < 80:
		n = s.rng.IntN(64)
	case p < 95:
		n = 64 + s.rng.IntN(1<<10)
	default:
		n = min(s.top.backlog+1+s.rng.IntN(s.top.backlog+1), 40<<10)
	}
	return strings.Repeat(string(rune('a'+s.rng.IntN(26))), n)
}

// liveConns returns the links not cut yet, in a stable order.
func (s *sim) liveConns() []*simConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*simConn
	for _, n := range s.nodes {
		for _, c := range n.conns {
			if !c.Closed() {
				out = append(out, c)
			}
		}
	}
	return out
}

type stalled struct {
	c     *simConn
	until time.Time
}

func (s *sim) step(i int) {
	s.resumeDue(false)
	conns := s.liveConns()
	pick := func() *simConn {
		if len(conns) == 0 {
			return nil
		}
		return conns[s.rng.IntN(len(conns))]
	}
	switch a := s.rng.IntN(100); {
	case a < 40:
		n := 1 + s.rng.IntN(20)
		for j := 0; j < n; j++ {
			s.write()
		}
		s.tracef("step %d: %d writes, master offset %d", i, n, s.top.m.Offset())
	case a < 50:
		if c := pick(); c != nil {
			c.Cut()
			s.res.Cuts++
			s.tracef("step %d: cut %s's link at byte %d", i, c.rec.node.name, c.BytesRead())
		}
	case a < 62:
		if c := pick(); c != nil {
			at := c.BytesRead() + 1 + s.rng.Int64N(4<<10)
			c.CutAfterRead(at)
			s.res.CutsAtByte++
			s.tracef("step %d: %s's link to be cut after byte %d", i, c.rec.node.name, at)
		}
	case a < 72:
		if c := pick(); c != nil {
			d := time.Duration(1+s.rng.IntN(40)) * time.Millisecond
			if s.rng.IntN(5) == 0 {
				d = s.cfg.Timeout + time.Duration(s.rng.IntN(200))*time.Millisecond // past the timeouts
			}
			c.Stall()
			s.stalls = append(s.stalls, stalled{c, time.Now().Add(d)})
			s.res.Stalls++
			s.tracef("step %d: stall %s's link for %v", i, c.rec.node.name, d)
		}
	case a < 80:
		if c := pick(); c != nil {
			pause := time.Duration(s.rng.IntN(300)) * time.Microsecond
			chunk := 1 + s.rng.IntN(256)
			c.trickle(pause, chunk)
			s.trickles = append(s.trickles, stalled{c, time.Now().Add(time.Duration(5+s.rng.IntN(60)) * time.Millisecond)})
			s.res.Trickles++
			s.tracef("step %d: %s's link trickles %d bytes per read after %v", i, c.rec.node.name, chunk, pause)
		}
	case a < 84 && s.cfg.GetAcks:
		s.top.m.RequestAck()
		s.tracef("step %d: GETACK", i)
	case a < 88 && s.cfg.Restarts:
		s.restart(i)
	case a < 90 && s.cfg.Restarts:
		s.restartMaster(i)
	case a < 93 && s.cfg.Promotions:
		s.promote(i)
	default:
		d := time.Duration(s.rng.IntN(15)) * time.Millisecond
		s.tracef("step %d: sleep %v", i, d)
		time.Sleep(d)
	}
	time.Sleep(time.Duration(s.rng.IntN(3000)) * time.Microsecond)
}

// resumeDue ends the stalls and trickles whose time came, or all of them.
func (s *sim) resumeDue(all bool) {
	now := time.Now()
	keep := s.stalls[:0]
	for _, st := range s.stalls {
		if all || now.After(st.until) {
			st.c.Resume()
		} else {
			keep = append(keep, st)
		}
	}
	s.stalls = keep
	keepT := s.trickles[:0]
	for _, st := range s.trickles {
		if all || now.After(st.until) {
			st.c.trickle(0, 0)
		} else {
			keepT = append(keepT, st)
		}
	}
	s.trickles = keepT
}

// restart stops a replica and starts a new one on the same store from its
// persisted position, with a new Master when it had one (a new process).
func (s *sim) restart(i int) {
	var cands []*simNode
	for _, n := range s.nodes {
		if n != s.top {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return
	}
	n := cands[s.rng.IntN(len(cands))]
	s.stopReplica(n)
	pos := n.inst.r.Position()
	text, _ := pos.MarshalText()
	var back psync.Position
	if err := back.UnmarshalText(text); err != nil {
		s.errorf("%s: position %q does not read back: %v", n.name, text, err)
	}
	if n.m != nil {
		s.closeMaster(n)
		if back.IsZero() {
			s.newMaster(n, psync.Position{})
		} else {
			s.newMaster(n, back)
		}
	}
	s.startReplica(n, back)
	s.res.Restarts++
	s.tracef("step %d: restart %s at %v", i, n.name, back)
}

// closeMaster closes n's Master while its replicas may be dialing it and
// its links are live (Close drops them); new dials wait for the next Master.
func (s *sim) closeMaster(n *simNode) {
	s.mu.Lock()
	n.blocked = true
	m := n.m
	s.mu.Unlock()
	m.Close()
	s.mu.Lock()
	n.blocked = false
	s.mu.Unlock()
}

// restartMaster restarts the top from its persisted position: same data
// and ID, empty backlog.
func (s *sim) restartMaster(i int) {
	top := s.top
	s.closeMaster(top) // first: the master PINGs until closed
	pos := top.m.Position()
	s.newMaster(top, pos)
	s.res.MasterRestarts++
	s.tracef("step %d: restart master %s at %v", i, top.name, pos)
}

// promote makes a replica of the top with a Master the new top (REPLICAOF
// NO ONE), repoints the top's other replicas to it, and demotes the old top
// to a replica of it, sometimes after writes the new top never saw.
func (s *sim) promote(i int) {
	var cands []*simNode
	for _, n := range s.nodes {
		if n.up == s.top && n.m != nil {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return
	}
	c := cands[s.rng.IntN(len(cands))]
	s.stopReplica(c)
	pos, err := c.m.Promote()
	if err != nil {
		s.errorf("promote %s: %v", c.name, err)
		return
	}
	old := s.top
	lost := 0
	if s.rng.IntN(3) == 0 {
		lost = 1 + s.rng.IntN(5)
		for j := 0; j < lost; j++ {
			s.write()
		}
	}
	s.promoted.Store(true)
	s.mu.Lock()
	for _, n := range s.nodes {
		if n.up == old && n != c {
			n.up = c
		}
	}
	c.up = nil
	old.up = c
	s.top = c
	s.mu.Unlock()
	if old.app == nil {
		old.app = &simApplier{s: s, node: old, last: -1}
	}
	s.startReplica(old, psync.Position{}) // resumes from its Master's position
	s.res.Promotions++
	s.tracef("step %d: promote %s at %v; old master %s demoted after %d lost writes", i, c.name, pos, old.name, lost)
}

// calm stops every fault: stalls and trickles end, cuts at a byte are
// disarmed; then one last write.
func (s *sim) calm() {
	s.resumeDue(true)
	for _, c := range s.liveConns() {
		c.CutAfterRead(-1)
		c.Resume()
		c.trickle(0, 0)
	}
	s.write()
	s.tracef("calm: master %s at %d", s.top.name, s.top.m.Offset())
}

// settle waits for every node to reach the top's offset, then checks the
// invariants.
func (s *sim) settle() {
	top := s.top
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SettleTimeout)
	defer cancel()
	for _, n := range s.nodes {
		if n == top {
			continue
		}
		if err := n.inst.r.WaitOffset(ctx, top.m.Offset()); err != nil {
			s.errorf("%s stuck at offset %d, master %s at %d: %v", n.name, n.inst.r.Offset(), top.name, top.m.Offset(), err)
			return
		}
	}
	// Stream PINGs move the offset: find a moment when all agree, on the
	// replicas and on the backlogs of those with a Master.
	var pos psync.Position
	for {
		pos = top.m.Position()
		same := true
		for _, n := range s.nodes {
			if n != top && (n.inst.r.Position() != pos || n.m != nil && n.m.Position() != pos) {
				same = false
			}
		}
		if same && top.m.Position() == pos {
			break
		}
		if ctx.Err() != nil {
			for _, n := range s.nodes {
				if n == top {
					continue
				}
				mpos := "none"
				if n.m != nil {
					mpos = n.m.Position().String()
				}
				s.errorf("%s at %v (its Master at %s), master %s at %v", n.name, n.inst.r.Position(), mpos, top.name, pos)
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	want := top.store.Digest()
	for _, n := range s.nodes {
		if n == top {
			continue
		}
		if s.cfg.sabotage == sabotageStrayWrite && n == s.nodes[len(s.nodes)-1] {
			_ = n.store.Set("stray", "write")
		}
		if got := n.store.Digest(); got != want {
			s.errorf("%s: dataset digest %x, master %s %x (%d keys vs %d)", n.name, got, top.name, want, n.store.Len(), top.store.Len())
		}
		if err := n.store.Err(); err != nil {
			s.errorf("%s: %v", n.name, err)
		}
	}
	s.tracef("settled at %v", pos)
}

// count gathers every Master's and Replica's own figures and checks them
// against what the links showed.
func (s *sim) count() {
	// Links still reconnect while this runs: read the replicas' figures,
	// then the links', then the masters', so that each later count can only
	// be larger.
	s.mu.Lock()
	defer s.mu.Unlock()
	var rf, rp, mf, mp int64
	for _, n := range s.nodes {
		for _, r := range n.replicas {
			st := r.Stats()
			rf += st.FullSyncs
			rp += st.PartialSyncs
		}
	}
	s.statsMu.Lock()
	r := s.res
	s.statsMu.Unlock()
	for _, m := range s.masters {
		st := m.Stats()
		mf += st.FullSyncs
		mp += st.PartialOK
	}
	r.ReplicaFullSyncs, r.ReplicaPartialSyncs, r.MasterFullSyncs, r.MasterPartialOK = rf, rp, mf, mp
	s.statsMu.Lock()
	s.res.ReplicaFullSyncs, s.res.ReplicaPartialSyncs, s.res.MasterFullSyncs, s.res.MasterPartialOK = rf, rp, mf, mp
	s.statsMu.Unlock()
	// A master counts its decision before the reply is written (which a cut
	// can prevent); a replica counts a resync only once it got the reply
	// (and, for a full one, loaded the snapshot).
	if int64(r.FullSyncs) > r.MasterFullSyncs || int64(r.PartialSyncs) > r.MasterPartialOK {
		s.errorf("links saw %d full and %d partial resyncs, masters counted only %d and %d", r.FullSyncs, r.PartialSyncs, r.MasterFullSyncs, r.MasterPartialOK)
	}
	if r.ReplicaFullSyncs > int64(r.FullSyncs) || r.ReplicaPartialSyncs > int64(r.PartialSyncs) {
		s.errorf("replicas counted %d full and %d partial resyncs, links saw only %d and %d", r.ReplicaFullSyncs, r.ReplicaPartialSyncs, r.FullSyncs, r.PartialSyncs)
	}
}

// teardown stops every Run, Master and Serve, and reports any that hangs.
func (s *sim) teardown() {
	s.resumeDue(true)
	for _, n := range s.nodes {
		if n.inst == nil {
			continue
		}
		n.inst.cancel()
		select {
		case err := <-n.inst.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				s.errorf("%s: Run returned %v", n.name, err)
			}
		case <-time.After(s.cfg.SettleTimeout / 2):
			s.errorf("%s: Run did not return within %v of its cancel\n%s", n.name, s.cfg.SettleTimeout/2, stacks())
		}
	}
	s.mu.Lock()
	s.closing = true
	masters := append([]*psync.Master(nil), s.masters...)
	s.mu.Unlock()
	s.cancel()
	for _, n := range s.nodes {
		for _, c := range n.conns {
			c.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.serves.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.SettleTimeout / 2):
		s.errorf("Master.Serve did not return within %v of the teardown\n%s", s.cfg.SettleTimeout/2, stacks())
		return
	}
	for _, m := range masters {
		m.Close()
	}
}

func stacks() string {
	buf := make([]byte, 256<<10)
	return string(buf[:runtime.Stack(buf, true)])
}

func (s *sim) describe() string {
	var b strings.Builder
	for _, n := range s.nodes {
		fmt.Fprintf(&b, "%s(backlog %d", n.name, n.backlog)
		if n.up != nil {
			fmt.Fprintf(&b, ", replica of %s, single link %v", n.up.name, n.single)
		}
		if n.m != nil && n.up != nil {
			b.WriteString(", with a master")
		}
		b.WriteString(") ")
	}
	return b.String()
}

// dump prints what a failing run needs to be understood and replayed.
func (s *sim) dump(res SimResult) {
	s.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "sim seed %d failed; config %+v\n", s.cfg.Seed, s.cfg)
	fmt.Fprintf(&b, "topology: %s\n", s.describe())
	for _, n := range s.nodes {
		if n.inst != nil {
			fmt.Fprintf(&b, "  %s: %+v\n", n.name, n.inst.r.Stats())
		}
		if n.m != nil {
			st := n.m.Stats()
			fmt.Fprintf(&b, "  %s master: id %s id2 %s/%d offset %d backlog [%d..] full %d partial %d err %d\n",
				n.name, st.ReplID, st.ReplID2, st.SecondOffset, st.Offset, st.BacklogFirst, st.FullSyncs, st.PartialOK, st.PartialErr)
		}
	}
	b.WriteString("schedule:\n")
	for _, l := range s.trace {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("last library logs:\n")
	b.WriteString(s.logs.String())
	fmt.Fprintf(&b, "result: %v\n", res)
	if s.cfg.Rerun != "" {
		fmt.Fprintf(&b, "rerun this seed alone: %s\n", s.cfg.Rerun)
	}
	s.t.Log(b.String())
}

// logRing keeps the last library log records of a run, formatted only when
// a failure prints them.
type logRing struct {
	mu   sync.Mutex
	recs []loggedRecord
	next int
	max  int
}

type loggedRecord struct {
	r     slog.Record
	attrs []slog.Attr
}

func (l *logRing) add(r slog.Record, attrs []slog.Attr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := loggedRecord{r.Clone(), attrs}
	if len(l.recs) < l.max {
		l.recs = append(l.recs, rec)
		return
	}
	l.recs[l.next] = rec
	l.next = (l.next + 1) % l.max
}

func (l *logRing) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i := range l.recs {
		rec := l.recs[(l.next+i)%len(l.recs)]
		fmt.Fprintf(&b, "  %s %s %s", rec.r.Time.Format("15:04:05.000"), rec.r.Level, rec.r.Message)
		for _, a := range rec.attrs {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		}
		rec.r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}

type logHandler struct {
	ring  *logRing
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	h.ring.add(r, h.attrs)
	return nil
}
func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{ring: h.ring, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *logHandler) WithGroup(string) slog.Handler { return h }
