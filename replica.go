package psync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ReplicaConfig configures a Replica. The zero value of every field but
// Dial, Loader and Applier selects the documented default.
type ReplicaConfig struct {
	// Dial opens a connection to the master. Required. It is called again
	// for every reconnection.
	Dial func(ctx context.Context) (io.ReadWriteCloser, error)
	// Loader loads full-resync snapshots. Required.
	Loader Loader
	// Applier applies the command stream. Required.
	Applier Applier

	// Master, if set, makes this replica serve sub-replicas (chained
	// replication) and keep a backlog of the stream it applied, so it can be
	// promoted in place (Master.Promote) with its data, offset and backlog.
	// Every byte the replica processes is fed to it, byte for byte, so
	// sub-replicas share the upstream's replid and offsets. Its Snapshotter
	// serves sub-replicas' full resyncs: Snapshot.Offset must then be the
	// larger of the Offset of the last Command applied to the captured
	// dataset (or of the snapshot loaded) and Master.Offset(), both read
	// under the host's lock (psync writes applied commands to the backlog
	// in batches, at the latest before it waits for more input, and the
	// master's full resync waits for the backlog to catch up; bytes beyond
	// the last command, PINGs, change no data). When Position is zero, the
	// replica resumes from the Master's own position: a demoted master
	// continues partially with its new master when its history allows.
	Master *Master

	// Position resumes a persisted history: the replica's dataset is at this
	// position, so its first PSYNC asks to continue from Offset+1. Default:
	// no history (PSYNC ? -1).
	Position Position

	// User and Password are sent with AUTH when Password is set (masterauth,
	// masteruser). Without User, AUTH takes the password alone.
	User     string
	Password string

	// ListeningPort and IPAddress are announced with REPLCONF so the master
	// can show them; not sent when zero.
	ListeningPort int
	IPAddress     string

	// AckPeriod is how often the replica sends REPLCONF ACK. Default 1 s.
	AckPeriod time.Duration
	// Timeout drops a master silent for this long (repl-timeout). Default
	// 60 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts; the wait doubles on each failure. A link that reached the
	// stream is retried at once. Defaults 100 ms and 5 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// SingleLink disables the second link a full resync otherwise opens.
	// By default, as soon as the master answers +FULLRESYNC, the replica
	// opens a second connection that continues partially from the
	// snapshot's offset and buffers that stream locally (LoadBufferSize)
	// while the snapshot loads, so the master never needs more than its
	// backlog for a replica in full resync, however slow the snapshot. With
	// SingleLink the replica behaves as Redis: the stream follows the
	// snapshot on the same link, and the backlog must cover the whole
	// transfer and load.
	SingleLink bool
	// LoadBufferSize bounds the stream buffered during a full resync.
	// Default 256 MiB. LoadBufferDir, when set, keeps the first 16 MiB in
	// memory and spills the rest to an unlinked temporary file there.
	LoadBufferSize int64
	LoadBufferDir  string

	// MaxSnapshotSize refuses $<len> snapshots larger than this. Default
	// 0: no limit (the snapshot is streamed to the Loader, never buffered).
	MaxSnapshotSize int64
	// Limits bounds what the master can make the replica buffer.
	Limits Limits
	// Logger receives the replica's logs. Default slog.Default().
	Logger *slog.Logger
}

func (c ReplicaConfig) withDefaults() ReplicaConfig {
	if c.AckPeriod <= 0 {
		c.AckPeriod = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = 5 * time.Second
		if c.MaxBackoff < c.MinBackoff {
			c.MaxBackoff = c.MinBackoff
		}
	}
	if c.LoadBufferSize <= 0 {
		c.LoadBufferSize = 256 << 20
	}
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Replica states, as Stats reports them.
const (
	replStateConnecting int32 = iota
	replStateHandshake
	replStateTransfer
	replStateConnected
)

var replStateNames = [...]string{"connect", "handshake", "transfer", "connected"}

// Replica follows a master: it connects, resynchronizes (partially when its
// position allows, fully otherwise), applies the stream, acknowledges its
// offset, and reconnects whenever the link fails.
type Replica struct {
	cfg ReplicaConfig
	log *slog.Logger

	mu           sync.Mutex
	replid       ReplID
	replid2      ReplID
	secondOffset int64
	lastErr      error
	running      bool
	links        map[*replLink]struct{}

	offset     atomic.Int64 // processed
	readOffset atomic.Int64 // received on the stream
	offsetWake notifier
	state      atomic.Int32
	lastIO     atomic.Int64 // unix ns

	fullSyncs    atomic.Int64
	lastFull     atomic.Int64 // ns
	partialSyncs atomic.Int64
	bytesRecv    atomic.Int64
	bytesSent    atomic.Int64
	connects     atomic.Int64

	linkBuf    []byte      // the main link's read buffer, owned by Run
	psyncApart atomic.Bool // the master refused a PSYNC pipelined with the handshake
}

// NewReplica returns a Replica; Run starts it.
func NewReplica(cfg ReplicaConfig) (*Replica, error) {
	if cfg.Dial == nil || cfg.Loader == nil || cfg.Applier == nil {
		return nil, errors.New("psync: ReplicaConfig needs Dial, Loader and Applier")
	}
	if !cfg.Position.IsZero() && (!cfg.Position.ID.Valid() || cfg.Position.Offset < 0 || cfg.Position.Offset > MaxOffset) {
		return nil, fmt.Errorf("%w: invalid ReplicaConfig.Position %v", ErrBadReplID, cfg.Position)
	}
	cfg = cfg.withDefaults()
	r := &Replica{cfg: cfg, log: cfg.Logger.With("role", "replica"), replid: cfg.Position.ID, replid2: NoReplID, secondOffset: -1}
	if m := cfg.Master; m != nil {
		pos, err := m.attachFollower(r)
		if err != nil {
			return nil, err
		}
		switch {
		case cfg.Position.IsZero() && pos.Offset == 0:
			// A master never fed has no history to continue: PSYNC ? -1,
			// as a redis-server started with replicaof.
		case cfg.Position.IsZero():
			r.replid = pos.ID
			cfg.Position = pos
			m.mu.Lock()
			r.replid2, r.secondOffset = m.replid2, m.secondOffset
			m.mu.Unlock()
		case cfg.Position != pos:
			m.resetHistory(cfg.Position.ID, cfg.Position.Offset)
		}
	}
	r.offset.Store(cfg.Position.Offset)
	r.readOffset.Store(cfg.Position.Offset)
	return r, nil
}

// Position returns the replica's replication ID and processed offset, for
// the host to persist with its dataset.
func (r *Replica) Position() Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replid == "" {
		return Position{}
	}
	return Position{ID: r.replid, Offset: r.offset.Load()}
}

func (r *Replica) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Offset returns the replica's processed offset. It advances once per
// batch of commands that arrived together, at the latest before the replica
// waits for more input; the Offset of each Command handed to the Applier is
// exact.
func (r *Replica) Offset() int64 { return r.offset.Load() }

// WaitOffset blocks until the replica processed at least offset off, or ctx
// ends.
func (r *Replica) WaitOffset(ctx context.Context, off int64) error {
	return r.offsetWake.wait(ctx, func() bool { return r.offset.Load() >= off })
}

// Run follows the master until ctx ends, reconnecting with capped backoff
// whenever the link fails. It returns ctx's error, or an error wrapping
// ErrApply when the Applier refused a command (the replica cannot follow a
// stream it cannot apply). Run must not be called twice at once.
func (r *Replica) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("psync: Replica.Run already running")
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		r.state.Store(replStateConnecting)
	}()

	backoff := time.Duration(0)
	for {
		streamed, err := r.runLink(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		if errors.Is(err, ErrApply) {
			r.log.Error("replica stopped", "err", err)
			return err
		}
		switch {
		case streamed:
			backoff = 0
		case backoff == 0:
			backoff = r.cfg.MinBackoff
		default:
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		}
		r.log.Warn("link to master lost", "err", err, "retry_in", backoff)
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// replLink is one connection of the replica to its master.
type replLink struct {
	r      *Replica
	conn   io.ReadWriteCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	lastIO atomic.Int64 // unix ns of the last byte read
	wmu    sync.Mutex
	buf    []byte
}

// openLink wraps conn in a link whose watchdog drops it when the master is
// silent for Timeout, and closes conn when the link ends.
func (r *Replica) openLink(ctx context.Context, conn io.ReadWriteCloser) *replLink {
	lctx, cancel := context.WithCancelCause(ctx)
	l := &replLink{r: r, conn: conn, ctx: lctx, cancel: cancel, done: make(chan struct{})}
	l.lastIO.Store(time.Now().UnixNano())
	r.lastIO.Store(time.Now().UnixNano())
	r.mu.Lock()
	if r.links == nil {
		r.links = make(map[*replLink]struct{})
	}
	r.links[l] = struct{}{}
	r.mu.Unlock()
	go func() {
		defer close(l.done)
		l.watch()
		conn.Close()
		r.mu.Lock()
		delete(r.links, l)
		r.mu.Unlock()
	}()
	return l
}

// ErrDisconnected ends a link closed by Replica.Disconnect.
var ErrDisconnected = errors.New("psync: link closed by Disconnect")

// Disconnect closes the replica's current connections to its master (what
// CLIENT KILL TYPE master does on Redis) and returns how many it closed.
// Run reconnects at once and continues partially when the master's backlog
// allows.
func (r *Replica) Disconnect() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for l := range r.links {
		l.cancel(ErrDisconnected)
		// Closing here rather than in the link's watchdog spares a
		// goroutine hand-off before Run can reconnect.
		l.conn.Close()
	}
	return len(r.links)
}

// close ends the link and waits for its watchdog.
func (l *replLink) close() {
	l.cancel(nil)
	<-l.done
}

// cause returns why the link ended when its watchdog ended it, else err.
func (l *replLink) cause(err error) error {
	if c := context.Cause(l.ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// reader returns the link's connection as a reader that counts bytes and
// notes activity for the watchdog.
func (l *replLink) reader() io.Reader { return countingReader{l.conn, l} }

func (l *replLink) watch() {
	timeout := l.r.cfg.Timeout
	t := time.NewTicker(min(timeout/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case now := <-t.C:
			if silent := time.Duration(now.UnixNano() - l.lastIO.Load()); silent > timeout {
				l.cancel(fmt.Errorf("%w: master silent for %v", ErrTimeout, silent.Round(time.Millisecond)))
				return
			}
		}
	}
}

func (l *replLink) send(p []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.sendLocked(p)
}

func (l *replLink) sendLocked(p []byte) error {
	if d, ok := l.conn.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(time.Now().Add(l.r.cfg.Timeout))
	}
	n, err := l.conn.Write(p)
	l.r.bytesSent.Add(int64(n))
	if err != nil {
		if c := context.Cause(l.ctx); c != nil {
			return c
		}
	}
	return timeoutErr(err, l.r.cfg.Timeout)
}

// sendAck sends REPLCONF ACK <processed offset>.
func (l *replLink) sendAck() error { return l.sendAckAt(l.r.offset.Load()) }

func (l *replLink) sendAckAt(off int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.buf = AppendArray(l.buf[:0], 3)
	l.buf = AppendBulkString(l.buf, "REPLCONF")
	l.buf = AppendBulkString(l.buf, "ACK")
	var num [20]byte
	l.buf = AppendBulk(l.buf, strconv.AppendInt(num[:0], off, 10))
	return l.sendLocked(l.buf)
}

// ackEvery sends ACKs every AckPeriod until the link ends or stop closes;
// off gives the offset to acknowledge.
func (l *replLink) ackEvery(stop <-chan struct{}, off func() int64) {
	t := time.NewTicker(l.r.cfg.AckPeriod)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
			if err := l.sendAckAt(off()); err != nil {
				l.cancel(err)
				return
			}
		}
	}
}

// countingReader counts received bytes and notes the time of the last read.
type countingReader struct {
	rd io.Reader
	l  *replLink
}

func (c countingReader) Read(p []byte) (int, error) {
	setReadDeadline(c.rd, c.l.r.cfg.Timeout)
	n, err := c.rd.Read(p)
	if n > 0 {
		now := time.Now().UnixNano()
		c.l.r.bytesRecv.Add(int64(n))
		c.l.r.lastIO.Store(now)
		c.l.lastIO.Store(now)
	}
	return n, timeoutErr(err, c.l.r.cfg.Timeout)
}

// runLink dials, syncs and streams until the link fails. streamed reports
// whether the link reached the stream, so a reconnection is tried at once.
func (r *Replica) runLink(ctx context.Context) (streamed bool, err error) {
	r.state.Store(replStateConnecting)
	conn, err := r.cfg.Dial(ctx)
	if err != nil {
		return false, fmt.Errorf("psync: dial: %w", err)
	}
	r.connects.Add(1)
	l := r.openLink(ctx, conn)
	defer func() {
		err = l.cause(err)
		l.close()
	}()

	// One link at a time: its reader's buffer is reused from link to link,
	// so a reconnection does not allocate and clear it again.
	if r.linkBuf == nil {
		r.linkBuf = make([]byte, 256<<10)
	}
	cr := &CommandReader{rd: l.reader(), lim: r.cfg.Limits.withDefaults(), buf: r.linkBuf, pn: -1}
	r.state.Store(replStateHandshake)
	reply, err := r.handshake(l, cr, nil)
	if err != nil {
		return false, err
	}
	if reply.full {
		side, err := r.fullSync(ctx, l, cr, reply)
		if err != nil {
			return false, err
		}
		if side != nil {
			// Go on with the second link, which has streamed since the
			// snapshot began; the snapshot's link is done.
			l.close()
			l, cr = side.link, side.reader
			defer side.buf.close()
		}
	} else {
		r.continued(reply)
	}
	r.state.Store(replStateConnected)
	go l.ackEvery(nil, r.offset.Load)
	return true, r.stream(l, cr)
}

// readReply reads one reply line, skipping the empty keepalive lines a
// master may send before it answers.
func readReply(cr *CommandReader) (string, error) {
	for {
		line, err := cr.ReadLine()
		if err != nil {
			return "", err
		}
		if len(line) > 0 {
			return string(line), nil
		}
	}
}

// handshake sends PING, AUTH, the REPLCONFs and PSYNC in one write and reads
// their replies in order: one round trip (two with a Redis master, see
// below). With want, it asks to continue from want (the second link of a
// full resync); otherwise from the replica's position.
//
// Pipelining keeps Redis's per-reply rules: PING may be refused with -NOAUTH
// or -NOPERM (AUTH comes next; Redis answers a PING before AUTH so), AUTH
// must get +OK, and REPLCONF errors other than auth ones are only logged.
// PSYNC goes in the same write, which saves a round trip (and, on a busy
// master, a wait for its connection to be scheduled again); Redis refuses a
// PSYNC that arrives while replies to the same client are unsent ("-ERR SYNC
// and PSYNC are invalid with pending output"), in which case it is sent
// again on its own, and from then on sent after the other replies.
func (r *Replica) handshake(l *replLink, cr *CommandReader, want *Position) (psyncReply, error) {
	pos := r.Position()
	if want != nil {
		pos = *want
	}
	appendPSYNC := func(out []byte) []byte {
		if pos.IsZero() {
			return AppendCommandString(out, "PSYNC", "?", "-1")
		}
		return AppendCommandString(out, "PSYNC", string(pos.ID), strconv.FormatInt(pos.Offset+1, 10))
	}
	apart := r.psyncApart.Load()

	out := AppendCommandString(nil, "PING")
	auth := r.cfg.Password != ""
	if auth {
		if r.cfg.User != "" {
			out = AppendCommandString(out, "AUTH", r.cfg.User, r.cfg.Password)
		} else {
			out = AppendCommandString(out, "AUTH", r.cfg.Password)
		}
	}
	replconfs := 0
	if r.cfg.ListeningPort > 0 {
		out = AppendCommandString(out, "REPLCONF", "listening-port", strconv.Itoa(r.cfg.ListeningPort))
		replconfs++
	}
	if r.cfg.IPAddress != "" {
		out = AppendCommandString(out, "REPLCONF", "ip-address", r.cfg.IPAddress)
		replconfs++
	}
	out = AppendCommandString(out, "REPLCONF", "capa", "eof", "capa", "psync2")
	replconfs++
	if !apart {
		out = appendPSYNC(out)
	}
	// The write runs beside the reads: a master reads in chunks and may
	// answer PING before it has read the rest (long credentials), which on
	// a transport without buffering (net.Pipe) blocks until the replica
	// reads.
	sent := make(chan error, 1)
	go func() { sent <- l.send(out) }()
	written := false
	defer func() {
		// The write never outlives the handshake: on an early return,
		// closing the connection ends a write the master is not reading.
		if !written {
			l.conn.Close()
			<-sent
		}
	}()
	readFailed := func(err error) (psyncReply, error) {
		select {
		case werr := <-sent:
			written = true
			if werr != nil {
				return psyncReply{}, werr
			}
		default:
		}
		return psyncReply{}, err
	}

	line, err := readReply(cr)
	if err != nil {
		return readFailed(err)
	}
	if line[0] == '-' && !hasPrefixAny(line, "-NOAUTH", "-NOPERM") {
		return psyncReply{}, fmt.Errorf("%w: to PING: %q", ErrUnexpectedReply, truncate(line, 200))
	}
	if auth {
		line, err := readReply(cr)
		if err != nil {
			return readFailed(err)
		}
		if line != "+OK" {
			return psyncReply{}, fmt.Errorf("%w: %s", ErrAuth, truncate(line, 200))
		}
	}
	for ; replconfs > 0; replconfs-- {
		line, err := readReply(cr)
		if err != nil {
			return readFailed(err)
		}
		if hasPrefixAny(line, "-NOAUTH", "-NOPERM", "-WRONGPASS") {
			return psyncReply{}, fmt.Errorf("%w: %s", ErrAuth, truncate(line, 200))
		}
		if line[0] == '-' {
			r.log.Warn("master refused REPLCONF", "reply", truncate(line, 200))
		}
	}
	// Every command was answered, so every byte was read: the write is done.
	written = true
	if err := <-sent; err != nil {
		return psyncReply{}, err
	}

	if apart {
		if err := l.send(appendPSYNC(out[:0])); err != nil {
			return psyncReply{}, err
		}
	}
	line, err = readReply(cr)
	if err != nil {
		return psyncReply{}, err
	}
	if !apart && strings.Contains(line, "PSYNC are invalid with pending output") {
		r.psyncApart.Store(true)
		r.log.Info("master refuses PSYNC in the same write as the handshake (Redis); sending it apart from now on")
		if err := l.send(appendPSYNC(out[:0])); err != nil {
			return psyncReply{}, err
		}
		if line, err = readReply(cr); err != nil {
			return psyncReply{}, err
		}
	}
	return parsePSYNCReply([]byte(line))
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

func (r *Replica) continued(reply psyncReply) {
	r.partialSyncs.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if reply.id != "" && reply.id != r.replid {
		// The master's history changed name (it was promoted): keep ours as
		// the previous one, as Redis's shiftReplicationId does, and make
		// sub-replicas reconnect to learn it.
		r.replid2, r.secondOffset, r.replid = r.replid, r.offset.Load()+1, reply.id
		if m := r.cfg.Master; m != nil {
			m.shiftHistory(reply.id)
		}
	}
	r.log.Info("partial resync", "replid", r.replid, "offset", r.offset.Load())
}

var discardArgs = [][]byte{[]byte("DISCARD")}

// streamBatchSize bounds the processed bytes the stream loop holds before
// it writes them to the backlog and publishes the offset.
const streamBatchSize = 64 << 10

// streamBatch is what the stream loop processed but has not yet made
// visible: the raw bytes of whole commands (transactions once whole) not yet
// in the backlog, and offsets not yet published. Making them visible once per
// batch instead of once per command saves a backlog lock, atomic stores and a
// wake-up per command. The loop flushes before every read of the link (so
// never while it may wait for input), before an ACK, when the batch reaches
// streamBatchSize, and when it ends.
type streamBatch struct {
	r       *Replica
	batcher BatchApplier // nil when the Applier is not one
	inBatch bool         // between BeginBatch and EndBatch
	applied int          // bytes applied since BeginBatch
	backlog *Backlog     // nil without a Master
	pending []byte       // processed bytes not yet in the backlog
	read    int64        // offset after the last command read
	done    int64        // offset after the last command processed
	pubRead int64        // read and done as last published
	pubDone int64
}

// commit counts p, the raw bytes of a processed command or of a whole
// transaction, ending at offset end.
func (b *streamBatch) commit(p []byte, end int64) {
	b.done = end
	if b.backlog == nil {
		return
	}
	if len(p) >= streamBatchSize {
		// Too big to be worth a copy.
		if len(b.pending) > 0 {
			b.backlog.Write(b.pending)
			b.pending = b.pending[:0]
		}
		b.backlog.Write(p)
		return
	}
	b.pending = append(b.pending, p...)
	if len(b.pending) >= streamBatchSize {
		b.flush()
	}
}

// apply applies cmd, within a batch when the Applier batches.
func (b *streamBatch) apply(app Applier, cmd Command) error {
	if b.batcher != nil {
		if b.inBatch && b.applied >= streamBatchSize {
			b.flush()
		}
		if !b.inBatch {
			b.batcher.BeginBatch()
			b.inBatch, b.applied = true, 0
		}
		b.applied += len(cmd.Raw)
	}
	return app.Apply(cmd)
}

// flush ends the Applier's batch, writes the pending bytes to the backlog,
// then publishes the offsets: whoever sees an offset finds its bytes in the
// backlog and their commands applied.
func (b *streamBatch) flush() {
	if b.inBatch {
		b.inBatch = false
		b.batcher.EndBatch()
	}
	if len(b.pending) > 0 {
		b.backlog.Write(b.pending)
		b.pending = b.pending[:0]
	}
	if b.read != b.pubRead {
		b.r.readOffset.Store(b.read)
		b.pubRead = b.read
	}
	if b.done != b.pubDone {
		b.r.offset.Store(b.done)
		b.pubDone = b.done
		b.r.offsetWake.wake()
	}
}

// flushingReader flushes the batch before every read of the link: what was
// processed never waits for input still to come.
type flushingReader struct {
	rd io.Reader
	b  *streamBatch
}

func (f flushingReader) Read(p []byte) (int, error) {
	f.b.flush()
	return f.rd.Read(p)
}

// streamKind is what the stream loop does with a command.
type streamKind uint8

const (
	kindData     streamKind = iota // applied
	kindMulti                      // applied; opens a transaction
	kindEndMulti                   // EXEC or DISCARD: applied; closes one
	kindPing                       // PING or an empty command: counted only
	kindReplconf                   // counted only
	kindGetack                     // REPLCONF GETACK: counted, then ACKed
)

// applied reports whether the Applier gets commands of kind k.
func (k streamKind) applied() bool { return k <= kindEndMulti }

// classify runs for every command of the stream: the length and first
// letter of the name rule out data commands before any case-folding compare.
func classify(args [][]byte) streamKind {
	if len(args) == 0 {
		return kindPing
	}
	name := args[0]
	switch len(name) {
	case 4:
		switch name[0] | 0x20 {
		case 'p':
			if equalFold(name, "ping") {
				return kindPing
			}
		case 'e':
			if equalFold(name, "exec") {
				return kindEndMulti
			}
		}
	case 5:
		if name[0]|0x20 == 'm' && equalFold(name, "multi") {
			return kindMulti
		}
	case 7:
		if name[0]|0x20 == 'd' && equalFold(name, "discard") {
			return kindEndMulti
		}
	case 8:
		if name[0]|0x20 == 'r' && equalFold(name, "replconf") {
			if len(args) >= 2 && equalFold(args[1], "getack") {
				return kindGetack
			}
			return kindReplconf
		}
	}
	return kindData
}

func (r *Replica) stream(l *replLink, cr *CommandReader) (err error) {
	app := r.cfg.Applier
	b := &streamBatch{r: r}
	b.batcher, _ = app.(BatchApplier)
	if m := r.cfg.Master; m != nil {
		b.backlog = m.backlog
	}
	b.read = r.offset.Load()
	b.done, b.pubDone = b.read, b.read
	b.pubRead = r.readOffset.Load() // a cut block was read, not processed
	rd := cr.rd
	cr.rd = flushingReader{rd: rd, b: b}
	// A MULTI ... EXEC block counts as processed, and reaches sub-replicas,
	// only once whole, as in Redis: a link cut inside it resumes from MULTI.
	var block []byte
	inMulti := false
	defer func() {
		cr.rd = rd
		b.flush()
		if inMulti && err != nil && !errors.Is(err, ErrApply) {
			if derr := app.Apply(Command{Args: discardArgs, Offset: r.offset.Load()}); derr != nil {
				err = fmt.Errorf("%w: DISCARD of a cut transaction: %w", ErrApply, derr)
			}
		}
	}()
	// ack answers a GETACK with everything processed before it, once that
	// is in the backlog, so a failed ACK cannot leave the two apart.
	ack := func() error {
		b.flush()
		return l.sendAckAt(b.done)
	}
	for {
		cmd, err := cr.ReadCommand()
		if err != nil {
			return err
		}
		start := b.read
		b.read += int64(len(cmd.Raw))
		cmd.Offset = b.read
		kind := classify(cmd.Args)
		if kind.applied() {
			if err := b.apply(app, cmd); err != nil {
				return fmt.Errorf("%w: %s at offset %d: %w", ErrApply, cmd.Name(), start, err)
			}
		}
		switch {
		case !inMulti && kind == kindMulti:
			inMulti = true
			block = append(block[:0], cmd.Raw...)
			continue
		case inMulti && kind == kindEndMulti:
			inMulti = false
			block = append(block, cmd.Raw...)
			b.commit(block, b.read)
		case inMulti:
			block = append(block, cmd.Raw...)
			if kind == kindGetack {
				if err := ack(); err != nil {
					return err
				}
			}
			continue
		default:
			b.commit(cmd.Raw, b.read)
		}
		if kind == kindGetack {
			if err := ack(); err != nil {
				return err
			}
		}
	}
}

// ReplicaStats is a point-in-time view of a Replica, with Redis's INFO
// replication figures.
type ReplicaStats struct {
	Role string // "replica"
	// State is connect, handshake, transfer or connected.
	State string
	// LinkUp is master_link_status:up.
	LinkUp bool
	// SyncInProgress is master_sync_in_progress.
	SyncInProgress bool
	ReplID         ReplID
	ReplID2        ReplID
	SecondOffset   int64
	// Offset is the processed offset (slave_repl_offset); ReadOffset what
	// was received of the stream (slave_read_repl_offset).
	Offset     int64
	ReadOffset int64
	// LagBytes is ReadOffset - Offset: received, not yet applied.
	LagBytes int64
	// LastIO is the time since the master last sent anything
	// (master_last_io_seconds_ago).
	LastIO        time.Duration
	FullSyncs     int64
	PartialSyncs  int64
	BytesReceived int64
	BytesSent     int64
	Connects      int64
	// LastFullSync is how long the last full resync took, from +FULLRESYNC
	// to the loaded snapshot.
	LastFullSync time.Duration
	LastError    error
}

// Stats returns the replica's figures.
func (r *Replica) Stats() ReplicaStats {
	r.mu.Lock()
	s := ReplicaStats{Role: "replica", ReplID: r.replid, ReplID2: r.replid2, SecondOffset: r.secondOffset, LastError: r.lastErr}
	r.mu.Unlock()
	st := r.state.Load()
	s.State = replStateNames[st]
	s.LinkUp = st == replStateConnected
	s.SyncInProgress = st == replStateTransfer
	s.Offset = r.offset.Load()
	s.ReadOffset = max(r.readOffset.Load(), s.Offset)
	s.LagBytes = s.ReadOffset - s.Offset
	if t := r.lastIO.Load(); t != 0 {
		s.LastIO = time.Since(time.Unix(0, t))
	}
	s.FullSyncs, s.PartialSyncs = r.fullSyncs.Load(), r.partialSyncs.Load()
	s.BytesReceived, s.BytesSent, s.Connects = r.bytesRecv.Load(), r.bytesSent.Load(), r.connects.Load()
	s.LastFullSync = time.Duration(r.lastFull.Load())
	return s
}
