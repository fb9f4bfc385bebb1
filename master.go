package psync

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MasterConfig configures a Master. The zero value of every field but
// Snapshotter selects the documented default.
type MasterConfig struct {
	// Snapshotter captures the dataset for full resyncs. Required.
	Snapshotter Snapshotter

	// BacklogSize is the backlog capacity in bytes. Default 1 MiB.
	BacklogSize int

	// Position resumes a persisted history: the master starts with this
	// replication ID at this offset (its backlog empty), so replicas that are
	// at exactly this position continue partially. Default: a fresh ID at
	// offset 0.
	Position Position

	// User and Password, when Password is set, are the credentials replicas
	// must AUTH with before anything else (User defaults to "default").
	User     string
	Password string

	// PingPeriod is how often the master writes PING into the stream while
	// replicas are attached (repl-ping-replica-period). Default 10 s;
	// negative disables.
	PingPeriod time.Duration

	// Timeout drops a replica whose ACKs stopped, a handshake that does not
	// complete, or a write that does not progress, after this long
	// (repl-timeout). Default 60 s.
	Timeout time.Duration

	// MaxLag drops a replica whose unsent stream data exceeds this many bytes
	// (the hard limit of Redis's client-output-buffer-limit replica).
	// Writes never wait for a replica: its unsent data lives in the backlog,
	// and while a replica is further behind than BacklogSize the bytes leaving
	// the backlog are kept for it, up to MaxLag-BacklogSize bytes in all,
	// one copy shared by every lagging replica (Backlog.SetRetention). A
	// dropped replica can continue partially later if the backlog still
	// covers it. Default 256 MiB; memory is only used while a replica lags.
	MaxLag int64

	// SoftMaxLag and SoftMaxLagTime drop a replica that stays more than
	// SoftMaxLag bytes behind for SoftMaxLagTime (the soft limit of
	// client-output-buffer-limit replica). Defaults 64 MiB and 60 s; a
	// negative SoftMaxLag disables the soft limit.
	SoftMaxLag     int64
	SoftMaxLagTime time.Duration

	// FullSyncDelay is how long the master waits after a replica asks for a
	// full resync for others to join the same snapshot
	// (repl-diskless-sync-delay). Default 50 ms; negative means no wait.
	// Replicas that arrive before the snapshot starts being written still
	// share it.
	FullSyncDelay time.Duration

	// TempDir is where a snapshot without a known size is spooled when a
	// replica cannot take the diskless EOF framing. Default os.TempDir().
	TempDir string

	// MinReplicasToWrite and MinReplicasMaxLag make CheckWrite refuse writes
	// while fewer than MinReplicasToWrite replicas acknowledged within
	// MinReplicasMaxLag (min-replicas-to-write, min-replicas-max-lag).
	// Defaults 0 (off) and 10 s.
	MinReplicasToWrite int
	MinReplicasMaxLag  time.Duration

	// Limits bounds what a replica can make the master buffer.
	Limits Limits

	// Logger receives the master's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxLag and DefaultSoftMaxLag are MasterConfig's defaults: Redis's
// client-output-buffer-limit for replicas (256mb 64mb 60).
const (
	DefaultMaxLag     = 256 << 20
	DefaultSoftMaxLag = 64 << 20
)

func (c MasterConfig) withDefaults() MasterConfig {
	if c.BacklogSize <= 0 {
		c.BacklogSize = DefaultBacklogSize
	}
	if c.User == "" {
		c.User = "default"
	}
	if c.PingPeriod == 0 {
		c.PingPeriod = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxLag <= 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.SoftMaxLag == 0 {
		c.SoftMaxLag = DefaultSoftMaxLag
	}
	if c.SoftMaxLagTime <= 0 {
		c.SoftMaxLagTime = 60 * time.Second
	}
	if c.MinReplicasMaxLag <= 0 {
		c.MinReplicasMaxLag = 10 * time.Second
	}
	if c.FullSyncDelay == 0 {
		c.FullSyncDelay = 50 * time.Millisecond
	}
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Master is the source of a replication stream. The host feeds it every
// write, and it serves any number of replicas over any io.ReadWriter: a
// partial resync from its backlog when it can, a full resync with a snapshot
// otherwise, then the stream.
//
// Feeding is independent of the replicas: a write is appended to the backlog
// and each replica's sender copies from there at its own pace, so a slow or
// dead replica never slows the host, and a replica that falls further behind
// than MaxLag (or SoftMaxLag for SoftMaxLagTime) is dropped.
type Master struct {
	cfg     MasterConfig
	log     *slog.Logger
	backlog *Backlog

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	mu           sync.Mutex
	replid       ReplID
	replid2      ReplID
	secondOffset int64
	links        map[*link]struct{}
	nextLinkID   int
	session      *fullSync     // gathering replicas, nil if none
	idle         chan struct{} // closed when the last link goes, stopping the link-time goroutines
	senders      senderWake    // wakes senders waiting for new stream bytes
	ackWake      notifier      // wakes WaitAcks callers when an ACK arrives

	// follower is the Replica feeding this master's stream (chained
	// replication), nil when the host feeds it.
	follower *Replica
	closed   bool
	wg       sync.WaitGroup

	fullSyncs  atomic.Int64
	partialOK  atomic.Int64
	partialErr atomic.Int64
	bytesSent  atomic.Int64
	bytesRecv  atomic.Int64
	lastFull   atomic.Int64 // duration of the last full resync, ns
	needed     atomic.Int64 // backlog size the last refused PSYNC needed

	rateMu  sync.Mutex
	rateT   time.Time // start of the write-rate window
	rateOff int64     // master offset at rateT
	rate    float64   // bytes/s over the last closed window
}

// NewMaster returns a Master ready to be fed and to serve replicas.
func NewMaster(cfg MasterConfig) (*Master, error) {
	if cfg.Snapshotter == nil {
		return nil, errors.New("psync: MasterConfig.Snapshotter is required")
	}
	cfg = cfg.withDefaults()
	pos := cfg.Position
	if pos.IsZero() {
		pos = Position{ID: NewReplID()}
	} else if !pos.ID.Valid() || pos.Offset < 0 || pos.Offset > MaxOffset {
		return nil, fmt.Errorf("%w: invalid MasterConfig.Position %v", ErrBadReplID, pos)
	}
	ctx, cancel := context.WithCancel(context.Background())
	backlog := NewBacklog(cfg.BacklogSize, pos.Offset)
	backlog.SetRetention(cfg.MaxLag - int64(backlog.Size()))
	return &Master{
		rateT:        time.Now(),
		rateOff:      pos.Offset,
		cfg:          cfg,
		log:          cfg.Logger.With("role", "master"),
		backlog:      backlog,
		ctx:          ctx,
		cancel:       cancel,
		replid:       pos.ID,
		replid2:      NoReplID,
		secondOffset: -1,
		links:        make(map[*link]struct{}),
	}, nil
}

// Feed appends one or more whole commands, RESP-encoded (see AppendCommand),
// to the replication stream and returns the new master offset. The host
// calls it for every write, in commit order, under the same lock with which
// it applies the write (see Snapshotter). Feed costs O(len(cmd)) whatever the
// number of replicas, never blocks on a replica, and does not allocate, except
// a pooled 64 KiB block now and then while a replica is further behind than
// the backlog (the bytes kept for it, up to MaxLag).
//
// While the master belongs to a Replica (ReplicaConfig.Master), the stream
// is the upstream master's and the host must not Feed.
func (m *Master) Feed(cmd []byte) int64 {
	return m.backlog.Write(cmd)
}

// Offset returns the master offset: the number of stream bytes fed in this
// history.
func (m *Master) Offset() int64 { return m.backlog.Offset() }

// Position returns the master's replication ID and offset, for the host to
// persist with its dataset.
func (m *Master) Position() Position {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Position{ID: m.replid, Offset: m.backlog.Offset()}
}

// Backlog returns the master's backlog (read-only use).
func (m *Master) Backlog() *Backlog { return m.backlog }

var getackCmd = AppendCommandString(nil, "REPLCONF", "GETACK", "*")
var pingCmd = AppendCommandString(nil, "PING")

// RequestAck writes REPLCONF GETACK * into the stream, so every replica
// answers with an ACK as soon as it processed it.
func (m *Master) RequestAck() { m.Feed(getackCmd) }

// Close drops every replica and stops the master's goroutines. Feeding after
// Close still works (the backlog stays), but Serve returns ErrClosed.
func (m *Master) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for l := range m.links {
		l.stop(ErrClosed)
	}
	if m.idle != nil {
		close(m.idle)
		m.idle = nil
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *Master) state() MasterState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stateLocked()
}

func (m *Master) stateLocked() MasterState {
	b := m.backlog
	b.mu.Lock()
	defer b.mu.Unlock()
	return MasterState{
		ReplID: m.replid, ReplID2: m.replid2, SecondOffset: m.secondOffset,
		Offset: b.end, BacklogFirst: b.first(), HasBacklog: true,
	}
}

// link states, as INFO shows them.
const (
	stateHandshake int32 = iota
	stateWaitBgsave
	stateSendBulk
	stateOnline
)

var stateNames = [...]string{"handshake", "wait_bgsave", "send_bulk", "online"}

// link is one replica connection on the master.
type link struct {
	m      *Master
	id     int
	rw     io.ReadWriter
	closer io.Closer
	addr   string
	info   ReplicaInfo

	ctx    context.Context
	cancel context.CancelCauseFunc

	state      atomic.Int32
	legacy     atomic.Bool  // synced with SYNC: never ACKs, never timed out for it
	sent       atomic.Int64 // offset of the last stream byte written
	ack        atomic.Int64
	ackTime    atomic.Int64 // unix ns of the last ACK
	writeSince atomic.Int64 // unix ns a write started, 0 when none pending
	firstAck   chan struct{}
	ackOnce    sync.Once

	wmu sync.Mutex // serializes writes to rw

	// cur reads the stream for this link once its position is known (at
	// the snapshot's capture for a full resync); released when it ends.
	curMu   sync.Mutex
	cur     *Cursor
	curDone bool
	softAt  time.Time // when the lag went over SoftMaxLag; watch only

	syncResult chan fullSyncResult
}

func (l *link) stop(cause error) { l.cancel(cause) }

// openCursor gives the link a cursor at next, unless it ended.
func (l *link) openCursor(next int64) (*Cursor, error) {
	c, err := l.m.backlog.NewCursor(next)
	if err != nil {
		return nil, err
	}
	l.curMu.Lock()
	defer l.curMu.Unlock()
	if l.curDone {
		c.Close()
		return nil, context.Cause(l.ctx)
	}
	if l.cur != nil {
		l.cur.Close()
	}
	l.cur = c
	return c, nil
}

// cursor returns the link's cursor, nil if none was opened.
func (l *link) cursor() *Cursor {
	l.curMu.Lock()
	defer l.curMu.Unlock()
	return l.cur
}

// closeCursor releases the link's cursor for good.
func (l *link) closeCursor() {
	l.curMu.Lock()
	defer l.curMu.Unlock()
	l.curDone = true
	if l.cur != nil {
		l.cur.Close()
		l.cur = nil
	}
}

// write writes p with a deadline where the transport supports one, and
// records the pending write for the watchdog on transports that do not.
func (l *link) write(p []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.writeLocked(p)
}

func (l *link) writeLocked(p []byte) error {
	if err := context.Cause(l.ctx); err != nil {
		return err
	}
	if d, ok := l.rw.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(time.Now().Add(l.m.cfg.Timeout))
	}
	l.writeSince.Store(time.Now().UnixNano())
	n, err := l.rw.Write(p)
	l.writeSince.Store(0)
	l.m.bytesSent.Add(int64(n))
	if err != nil {
		if c := context.Cause(l.ctx); c != nil {
			return c
		}
		return timeoutErr(err, l.m.cfg.Timeout)
	}
	return nil
}

// Serve runs one replica link over rw: it reads the handshake (PING, AUTH,
// REPLCONF ...) up to PSYNC or SYNC, answers it, sends a partial or full
// resync, then streams until the link fails, ctx ends, or the master is
// closed. It returns why the link ended. If rw implements io.Closer, Serve
// closes it before returning; psync also closes it to interrupt a blocked
// read or write when it drops the replica, so use a transport with Close
// (or SetDeadline) to bound every wait.
func (m *Master) Serve(ctx context.Context, rw io.ReadWriter) error {
	l, err := m.attach(ctx, rw, ReplicaInfo{})
	if err != nil {
		return err
	}
	defer m.detach(l)
	cr := newCommandReader(recvCounter{rw, l}, m.cfg.Limits, true, 4<<10)
	req, err := m.handshake(l, cr)
	if err != nil {
		return m.linkEnded(l, err)
	}
	return m.linkEnded(l, m.serveSync(l, cr, req))
}

// ServeSync serves a replica whose handshake the host's own RESP server
// already read, up to and including the PSYNC or SYNC command whose
// arguments are args. info is what the replica announced with REPLCONF (see
// ReplicaInfo.Replconf). Bytes the host buffered beyond the PSYNC command
// must be readable from rw. Otherwise it behaves as Serve; the host must have
// checked authentication itself.
func (m *Master) ServeSync(ctx context.Context, rw io.ReadWriter, info ReplicaInfo, args [][]byte) error {
	req, err := ParseSyncRequest(args)
	if err != nil {
		if _, werr := rw.Write(AppendError(nil, "ERR "+err.Error())); werr != nil {
			err = errors.Join(err, werr)
		}
		if c, ok := rw.(io.Closer); ok {
			c.Close()
		}
		return err
	}
	l, err := m.attach(ctx, rw, info)
	if err != nil {
		return err
	}
	defer m.detach(l)
	cr := newCommandReader(recvCounter{rw, l}, m.cfg.Limits, true, 4<<10)
	return m.linkEnded(l, m.serveSync(l, cr, req))
}

func (m *Master) linkEnded(l *link, err error) error {
	if c := context.Cause(l.ctx); c != nil && !errors.Is(c, context.Canceled) {
		err = c // the watchdog's reason is the real one
	}
	m.log.Info("replica link ended", "replica", l.id, "addr", l.addr, "err", err)
	return err
}

func (m *Master) attach(ctx context.Context, rw io.ReadWriter, info ReplicaInfo) (*link, error) {
	lctx, cancel := context.WithCancelCause(ctx)
	l := &link{m: m, rw: rw, info: info, ctx: lctx, cancel: cancel, firstAck: make(chan struct{}), syncResult: make(chan fullSyncResult, 1)}
	l.closer, _ = rw.(io.Closer)
	if c, ok := rw.(net.Conn); ok && c.RemoteAddr() != nil {
		l.addr = c.RemoteAddr().String()
	}
	l.ack.Store(-1)
	l.sent.Store(-1)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel(ErrClosed)
		if l.closer != nil {
			l.closer.Close()
		}
		return nil, ErrClosed
	}
	m.nextLinkID++
	l.id = m.nextLinkID
	m.links[l] = struct{}{}
	if m.idle == nil {
		m.idle = make(chan struct{})
		m.wg.Add(1)
		go m.flusher(m.idle)
		if m.cfg.PingPeriod > 0 {
			m.wg.Add(1)
			go m.pingLoop(m.idle)
		}
	}
	// The watchdog closes the transport when the link ends (to interrupt
	// blocked I/O) and enforces timeouts and the lag limit. Added under mu,
	// so never concurrently with Close's Wait.
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		l.watch()
	}()
	return l, nil
}

func (m *Master) detach(l *link) {
	l.cancel(context.Canceled)
	l.closeCursor()
	m.mu.Lock()
	delete(m.links, l)
	if len(m.links) == 0 && m.idle != nil {
		close(m.idle)
		m.idle = nil
	}
	m.mu.Unlock()
}

func (m *Master) pingLoop(stop chan struct{}) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.PingPeriod)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.mu.Lock()
			following := m.follower != nil
			m.mu.Unlock()
			if !following { // a replica forwards its master's PINGs instead
				m.Feed(pingCmd)
			}
		}
	}
}

// flusher relays the backlog's "new bytes" signal to the senders, so that
// Feed wakes at most this one goroutine, whatever the number of replicas,
// and none while no sender waits (all busy writing, or stalled).
func (m *Master) flusher(stop chan struct{}) {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	w := &m.senders
	for {
		if w.arrived.wait(ctx, w.waiting) != nil {
			break
		}
		// Every waiter waits for the offset to pass its own after, all of
		// them >= the lowest, so a wait past the lowest misses nobody; it
		// returns at once when a write came in the meantime.
		if m.backlog.Wait(ctx, w.lowest()) != nil {
			break
		}
		w.wake()
	}
	w.wake()
}

// senderWake lets senders sleep until the stream passes their position.
type senderWake struct {
	mu      sync.Mutex
	ch      chan struct{} // closed by wake; nil when nobody waits
	after   int64         // the lowest offset a waiter waits to pass
	arrived notifier      // wakes the flusher when a first waiter comes
}

func (w *senderWake) waiting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch != nil
}

func (w *senderWake) lowest() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.after
}

func (w *senderWake) wake() {
	w.mu.Lock()
	ch := w.ch
	w.ch = nil
	w.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// wait returns once b's offset is not after, or with ctx's error.
func (w *senderWake) wait(ctx context.Context, b *Backlog, after int64) error {
	for {
		if b.Offset() != after {
			return nil
		}
		w.mu.Lock()
		if w.ch == nil {
			w.ch, w.after = make(chan struct{}), after
		} else {
			w.after = min(w.after, after)
		}
		ch := w.ch
		w.mu.Unlock()
		w.arrived.wake()
		// Re-check after publishing: a write that came before the flusher
		// read w.after would not wake it.
		if b.Offset() != after {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *link) watch() {
	m := l.m
	tick := m.cfg.Timeout / 4
	if tick > 100*time.Millisecond {
		tick = 100 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			if l.closer != nil {
				l.closer.Close()
			}
			return
		case now := <-t.C:
			ws := l.writeSince.Load()
			switch st := l.state.Load(); {
			case st == stateHandshake && now.Sub(start) > m.cfg.Timeout:
				l.cancel(fmt.Errorf("%w: handshake not completed in %v", ErrTimeout, m.cfg.Timeout))
			case ws != 0 && now.UnixNano()-ws > int64(m.cfg.Timeout):
				l.cancel(fmt.Errorf("%w: write blocked for %v", ErrTimeout, m.cfg.Timeout))
			case st == stateOnline && !l.legacy.Load() && now.UnixNano()-l.ackTime.Load() > int64(m.cfg.Timeout):
				// As Redis, a SYNC (pre-PSYNC) peer such as redis-cli
				// --replica never ACKs and is not timed out for it.
				l.cancel(fmt.Errorf("%w: no ACK for %v", ErrTimeout, m.cfg.Timeout))
			case st == stateOnline && m.backlog.Offset()-l.sent.Load() > m.cfg.MaxLag:
				l.cancel(fmt.Errorf("%w: %d unsent bytes, limit %d", ErrReplicaTooFar, m.backlog.Offset()-l.sent.Load(), m.cfg.MaxLag))
			case st == stateOnline && m.cfg.SoftMaxLag >= 0 && m.backlog.Offset()-l.sent.Load() > m.cfg.SoftMaxLag:
				if l.softAt.IsZero() {
					l.softAt = now
				} else if now.Sub(l.softAt) > m.cfg.SoftMaxLagTime {
					l.cancel(fmt.Errorf("%w: over %d unsent bytes for %v", ErrReplicaTooFar, m.cfg.SoftMaxLag, m.cfg.SoftMaxLagTime))
				}
			default:
				l.softAt = time.Time{}
			}
		}
	}
}

func (m *Master) handshake(l *link, cr *CommandReader) (SyncRequest, error) {
	authed := m.cfg.Password == ""
	failures := 0
	var out []byte
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			return SyncRequest{}, err
		}
		if len(cmd.Args) == 0 {
			continue
		}
		out = out[:0]
		switch {
		case cmd.Is("auth"):
			if authed && m.cfg.Password == "" {
				out = AppendError(out, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
				break
			}
			if m.checkAuth(cmd.Args) {
				authed = true
				out = AppendSimpleString(out, "OK")
				break
			}
			failures++
			out = AppendError(out, "WRONGPASS invalid username-password pair or user is disabled.")
			if failures >= 3 {
				_ = l.write(out)
				return SyncRequest{}, fmt.Errorf("%w: %d failed AUTH attempts", ErrAuth, failures)
			}
		case !authed:
			out = AppendError(out, "NOAUTH Authentication required.")
			if cmd.Is("psync") || cmd.Is("sync") {
				_ = l.write(out)
				return SyncRequest{}, fmt.Errorf("%w: %s before AUTH", ErrAuth, cmd.Name())
			}
		case cmd.Is("ping"):
			out = AppendSimpleString(out, "PONG")
		case cmd.Is("replconf"):
			if len(cmd.Args) >= 2 && (equalFold(cmd.Args[1], "ack") || equalFold(cmd.Args[1], "getack")) {
				continue // not a replica yet: ignored, no reply, as Redis
			}
			if err := l.info.Replconf(cmd.Args); err != nil {
				out = AppendError(out, "ERR "+err.Error())
			} else {
				out = AppendSimpleString(out, "OK")
			}
		case cmd.Is("psync"), cmd.Is("sync"):
			req, err := ParseSyncRequest(cmd.Args)
			if err != nil {
				_ = l.write(AppendError(out, "ERR "+err.Error()))
				return SyncRequest{}, err
			}
			return req, nil
		case cmd.Is("quit"):
			_ = l.write(AppendSimpleString(out, "OK"))
			return SyncRequest{}, io.EOF
		default:
			out = AppendError(out, "ERR unknown command '"+truncate(string(cmd.Args[0]), 64)+"': this endpoint serves replication only")
		}
		if err := l.write(out); err != nil {
			return SyncRequest{}, err
		}
	}
}

func (m *Master) checkAuth(args [][]byte) bool {
	var user, pass []byte
	switch len(args) {
	case 2:
		user, pass = []byte("default"), args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		return false
	}
	u := subtle.ConstantTimeCompare(user, []byte(m.cfg.User))
	p := subtle.ConstantTimeCompare(pass, []byte(m.cfg.Password))
	return u&p == 1
}

func (m *Master) serveSync(l *link, cr *CommandReader, req SyncRequest) error {
	m.mu.Lock()
	f := m.follower
	m.mu.Unlock()
	if f != nil && f.state.Load() != replStateConnected {
		// As Redis: a replica serves sub-replicas only while its own link
		// is up, so they never sync to a history about to be replaced.
		_ = l.write(AppendError(nil, "NOMASTERLINK Can't SYNC while not connected with my master"))
		return fmt.Errorf("%w: NOMASTERLINK", ErrUnexpectedReply)
	}
	st := m.state()
	d := Decide(st, req)
	if d.Partial {
		m.partialOK.Add(1)
		m.log.Info("partial resync accepted", "replica", l.id, "addr", l.addr, "offset", req.Offset, "backlog_bytes", st.Offset+1-req.Offset)
		id := ReplID("")
		if l.info.CapaPSYNC2 {
			id = st.ReplID
		}
		if err := l.write(appendContinue(nil, id)); err != nil {
			return err
		}
		l.sent.Store(req.Offset - 1)
		l.markOnline()
		return m.stream(l, cr, req.Offset)
	}
	l.legacy.Store(req.Legacy)
	if !req.Legacy && req.ReplID != "" {
		m.partialErr.Add(1)
		if req.ReplID == st.ReplID && req.Offset < st.BacklogFirst {
			need := st.Offset - req.Offset + 1
			m.needed.Store(need)
			m.log.Warn("replica fell out of the backlog; a larger backlog would have allowed a partial resync",
				"replica", l.id, "backlog_size", m.backlog.Size(), "backlog_needed", need)
		}
	}
	m.fullSyncs.Add(1)
	m.log.Info("full resync", "replica", l.id, "addr", l.addr, "reason", d.Reason)
	start := time.Now()

	l.state.Store(stateWaitBgsave)
	m.joinFullSync(l, req.Legacy)
	var res fullSyncResult
	select {
	case res = <-l.syncResult:
	case <-l.ctx.Done():
		// The session notices the cancelled link and skips it.
		return context.Cause(l.ctx)
	}
	if res.err != nil {
		return res.err
	}
	took := time.Since(start)
	m.lastFull.Store(int64(took))
	m.log.Info("full resync done", "replica", l.id, "took", took.Round(time.Millisecond),
		"write_rate_bytes_per_sec", int64(m.writeRate()),
		"backlog_for_single_link_sync", int64(m.writeRate()*took.Seconds()))
	if l.info.RDBOnly {
		return nil
	}
	l.sent.Store(res.offset)
	if res.eof {
		// As Redis: after a diskless snapshot the replica is put online on its
		// first ACK, so nothing follows the EOF mark until it is ready.
		go m.readAcks(l, cr)
		select {
		case <-l.firstAck:
		case <-l.ctx.Done():
			return context.Cause(l.ctx)
		case <-time.After(m.cfg.Timeout):
			return fmt.Errorf("%w: no ACK after the snapshot", ErrTimeout)
		}
		l.markOnline()
		return m.sendStream(l, res.offset+1)
	}
	l.markOnline()
	return m.stream(l, cr, res.offset+1)
}

func (l *link) markOnline() {
	l.ackTime.Store(time.Now().UnixNano())
	l.state.Store(stateOnline)
}

// stream reads ACKs in the background and sends the stream from next on.
func (m *Master) stream(l *link, cr *CommandReader, next int64) error {
	go m.readAcks(l, cr)
	return m.sendStream(l, next)
}

func (m *Master) sendStream(l *link, next int64) error {
	c := l.cursor()
	if c == nil || c.Next() != next {
		var err error
		if c, err = l.openCursor(next); err != nil {
			err = fmt.Errorf("%w: %w", ErrReplicaTooFar, err)
			l.cancel(err)
			return err
		}
	}
	buf := make([]byte, 64<<10)
	for {
		if err := m.senders.wait(l.ctx, m.backlog, c.Next()-1); err != nil {
			return context.Cause(l.ctx)
		}
		n, err := c.Read(buf)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrReplicaTooFar, err)
			l.cancel(err)
			return err
		}
		if n == 0 {
			continue
		}
		if err := l.write(buf[:n]); err != nil {
			l.cancel(err)
			return err
		}
		l.sent.Store(c.Next() - 1)
	}
}

// readAcks reads what the replica sends once it is a replica: REPLCONF ACK
// (and FACK); anything else is ignored, garbage ends the link.
func (m *Master) readAcks(l *link, cr *CommandReader) {
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			l.cancel(err)
			return
		}
		if !cmd.Is("replconf") || len(cmd.Args) < 3 || !equalFold(cmd.Args[1], "ack") {
			continue
		}
		off, err := ParseOffset(string(cmd.Args[2]))
		if err != nil {
			l.cancel(fmt.Errorf("%w: %w", ErrProtocol, err))
			return
		}
		if off > m.backlog.Offset() {
			l.cancel(fmt.Errorf("%w: ACK %d ahead of the master offset %d", ErrProtocol, off, m.backlog.Offset()))
			return
		}
		if off > l.ack.Load() {
			l.ack.Store(off)
		}
		l.ackTime.Store(time.Now().UnixNano())
		l.ackOnce.Do(func() { close(l.firstAck) })
		m.ackWake.wake()
	}
}

// recvCounter counts the bytes the master reads from replicas, and sets a
// read deadline of Timeout before each read where the transport has one.
type recvCounter struct {
	r io.Reader
	l *link
}

func (c recvCounter) Read(p []byte) (int, error) {
	timeout := c.l.m.cfg.Timeout
	if c.l.legacy.Load() {
		// A SYNC peer never writes once synced: no read deadline.
		if d, ok := c.r.(readDeadliner); ok {
			_ = d.SetReadDeadline(time.Time{})
		}
	} else {
		setReadDeadline(c.r, timeout)
	}
	n, err := c.r.Read(p)
	c.l.m.bytesRecv.Add(int64(n))
	return n, timeoutErr(err, timeout)
}

// timeoutErr makes a transport's deadline error (read or write) an
// ErrTimeout.
func timeoutErr(err error, timeout time.Duration) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: nothing read for %v: %w", ErrTimeout, timeout, err)
	}
	return err
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// setReadDeadline bounds the next read on transports that support it; on
// the others the link watchdogs close the link instead.
func setReadDeadline(r io.Reader, timeout time.Duration) {
	if d, ok := r.(readDeadliner); ok {
		_ = d.SetReadDeadline(time.Now().Add(timeout))
	}
}
