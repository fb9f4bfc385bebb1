package kv

import (
	"errors"
	"sync"
	"time"

	"github.com/psyncio/psync"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Now is the clock used for expiry. Default: time.Now.
	Now func() time.Time
	// Databases is the number of databases, selected with SELECT
	// 0..Databases-1. Default: 16.
	Databases int
}

// Store is the dataset: Databases databases guarded by one mutex. All
// methods are safe for concurrent use; each command runs atomically.
type Store struct {
	mu        sync.Mutex
	now       func() time.Time
	dbs       []*db
	propagate func(db int, argv [][]byte, raw []byte)
	flushHook func()
	readOnly  bool
	// propagated: the propagate hook ran in this hold of the lock, so the
	// flush hook runs before it is released (see unlock).
	propagated bool

	// Copy-on-write state. Every object records the epoch it was created
	// or cloned in. Snapshot bumps epoch; while any snapshot is live,
	// objects older than snapEpoch may be shared with one and are cloned
	// before being changed.
	epoch     uint64
	snapEpoch uint64
	snaps     int

	pending  []op  // writes of the running command or transaction, not yet propagated
	applying bool  // running Apply: record the first error reply
	applyErr error // first error reply seen by Apply
	scratch  []byte
	freeCtx  []*execCtx // command contexts to reuse (see run)

	expireDB int // database the next ExpireCycle starts with
}

// db is one database: keys and their absolute expiry times (unix ms).
type db struct {
	keys    keyTable
	expires map[string]int64
}

func newDB() *db {
	return &db{expires: make(map[string]int64)}
}

// op is one propagated command; raw is its RESP encoding when the client
// sent it in exactly that form (nil otherwise).
type op struct {
	db   int
	argv [][]byte
	raw  []byte
}

// New returns an empty Store.
func New(opt Options) *Store {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Databases <= 0 {
		opt.Databases = 16
	}
	s := &Store{now: opt.Now, epoch: 1, dbs: make([]*db, opt.Databases)}
	for i := range s.dbs {
		s.dbs[i] = newDB()
	}
	return s
}

// Client is the per-connection state: the selected database and any
// transaction being queued. The zero value is a client on database 0. A
// Client must not be used by two calls at once.
type Client struct {
	// DB is the selected database. SELECT changes it.
	DB int

	multi      bool       // between MULTI and EXEC/DISCARD
	multiDirty bool       // a queued command was rejected: EXEC aborts
	queue      [][][]byte // queued commands, copied
}

// InMulti reports whether the client is between MULTI and EXEC or DISCARD,
// when Exec queues commands instead of running them.
func (c *Client) InMulti() bool { return c.multi }

func (c *Client) resetMulti() {
	c.multi, c.multiDirty, c.queue = false, false, nil
}

// SetPropagate sets the hook called, under the store lock and in commit
// order, with every write command to send to replicas, in the form Redis
// 7.0 propagates it, and the database it applies to. The host emits SELECT
// when db differs from the last one it sent. A command that produces more
// than one write (a transaction, SPOP with a count) is wrapped in MULTI and
// EXEC calls.
//
// raw, when not nil, is argv's RESP encoding (psync.AppendCommand's bytes),
// so the host can append it to the stream as it is: ExecCommand passes the
// client's own bytes for a command propagated unchanged. It is nil for a
// rewritten command, which the host encodes from argv.
//
// argv, its elements and raw are only valid during the call. The hook must
// not call back into the Store. nil disables propagation.
func (s *Store) SetPropagate(fn func(db int, argv [][]byte, raw []byte)) {
	s.mu.Lock()
	s.propagate = fn
	s.mu.Unlock()
}

// SetPropagateFlush sets a hook called under the store lock just before a
// hold of it in which the propagate hook ran ends: at the end of Exec,
// ExecCommand and ExpireCycle, and at a Batch's End. A host that collects
// the propagated commands hands them to its stream there, once per batch
// rather than once per command, and no command runs in between: whenever
// the lock is free, every write committed so far has been flushed. The
// hook must not call back into the Store. nil disables it.
func (s *Store) SetPropagateFlush(fn func()) {
	s.mu.Lock()
	s.flushHook = fn
	s.mu.Unlock()
}

// unlock releases the store lock after a hold that may have propagated
// writes, calling the flush hook first when it did.
func (s *Store) unlock() {
	if s.propagated {
		s.propagated = false
		if s.flushHook != nil {
			s.flushHook()
		}
	}
	s.mu.Unlock()
}

// SetReadOnly switches replica mode. In it, Exec refuses writes with
// READONLY, reads treat logically expired keys as missing without deleting
// them, and ExpireCycle does nothing: the master's DELs remove them.
func (s *Store) SetReadOnly(ro bool) {
	s.mu.Lock()
	s.readOnly = ro
	s.mu.Unlock()
}

// Locked runs fn while holding the store lock, so that no command runs
// during fn. fn must not call Store methods: the lock is not reentrant. To
// read a replication offset together with a capture, use the atomically
// argument of Snapshot instead.
func (s *Store) Locked(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

// Databases returns the number of databases.
func (s *Store) Databases() int { return len(s.dbs) }

// DBSize returns the number of keys in database i, counting keys that have
// expired but were not deleted yet, as DBSIZE does. It returns 0 for an
// invalid index.
func (s *Store) DBSize(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.dbs) {
		return 0
	}
	return s.dbs[i].keys.len()
}

// DBStats returns the number of keys in database i and how many of them
// have an expiry, as INFO keyspace shows them (db0:keys=..,expires=..).
func (s *Store) DBStats(i int) (keys, expires int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.dbs) {
		return 0, 0
	}
	return s.dbs[i].keys.len(), len(s.dbs[i].expires)
}

// KeyspaceStats calls fn with every database's DBStats, in order, from one
// hold of the store lock (fn must not call the Store).
func (s *Store) KeyspaceStats(fn func(db, keys, expires int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range s.dbs {
		fn(i, d.keys.len(), len(d.expires))
	}
}

// Exec runs one client command and returns out with the RESP reply
// appended. argv[0] is the command name, matched case-insensitively; an
// empty argv appends nothing. Exec does not keep argv or its elements
// after it returns. Writes it applies are passed to the propagate hook
// before Exec returns.
//
// Commands the host implements itself (INFO, REPLICAOF, WAIT, PSYNC ...)
// must be handled before calling Exec, which answers them as unknown.
func (s *Store) Exec(c *Client, argv [][]byte, out []byte) []byte {
	return s.exec(c, argv, nil, out)
}

// ExecCommand is Exec for a command read by a psync.CommandReader. When
// cmd.Raw is exactly the RESP encoding of cmd.Args (as clients send
// commands; not an inline command), a write propagated unchanged reaches
// the propagate hook with those bytes as raw, sparing the host an encoding.
// ExecCommand does not keep cmd's slices after it returns.
func (s *Store) ExecCommand(c *Client, cmd psync.Command, out []byte) []byte {
	raw := cmd.Raw
	if !isEncoding(raw, cmd.Args) {
		raw = nil
	}
	return s.exec(c, cmd.Args, raw, out)
}

func (s *Store) exec(c *Client, argv [][]byte, raw, out []byte) []byte {
	if len(argv) == 0 {
		return out
	}
	s.mu.Lock()
	defer s.unlock()
	return s.execLocked(c, argv, raw, out)
}

func (s *Store) execLocked(c *Client, argv [][]byte, raw, out []byte) []byte {
	out = s.dispatch(c, argv, raw, out, false)
	s.flush()
	return out
}

// Batch runs a run of one client's commands, such as a pipeline, under one
// hold of the store lock instead of one per command: the first Exec takes
// the lock and End releases it. Each command is still atomic and its writes
// still reach the propagate hook before the next one runs. While a Batch
// holds the lock every other Store call waits, so the host must End it
// before anything that may block (reading from or writing to its client)
// and before calling any other Store method. The zero Batch is unusable;
// use Store.Batch. A Batch must not be used by two goroutines at once.
type Batch struct {
	s    *Store
	held bool
}

// Batch returns a Batch of the store, not holding the lock yet.
func (s *Store) Batch() Batch { return Batch{s: s} }

// Exec is Store.ExecCommand inside the batch, taking the store lock if the
// batch does not hold it yet.
func (b *Batch) Exec(c *Client, cmd psync.Command, out []byte) []byte {
	if len(cmd.Args) == 0 {
		return out
	}
	if !b.held {
		b.s.mu.Lock()
		b.held = true
	}
	raw := cmd.Raw
	if !isEncoding(raw, cmd.Args) {
		raw = nil
	}
	return b.s.execLocked(c, cmd.Args, raw, out)
}

// Held reports whether the batch holds the store lock: whether a command
// ran since the last End.
func (b *Batch) Held() bool { return b.held }

// End releases the store lock if the batch holds it, after the propagate
// flush hook if the batch's commands propagated writes. The next Exec takes
// it again.
func (b *Batch) End() {
	if b.held {
		b.held = false
		b.s.unlock()
	}
}

// isEncoding reports whether raw, a command as psync.CommandReader read it,
// is exactly psync.AppendCommand(nil, argv...). The reader takes bulk
// contents verbatim and accepts a length only as digits with an optional
// '-', so a non-canonical length ("$03", "-0") is longer than the canonical
// one: equal total lengths mean equal bytes.
func isEncoding(raw []byte, argv [][]byte) bool {
	if len(raw) == 0 || raw[0] != '*' {
		return false
	}
	n := 1 + digits(len(argv)) + 2
	for _, a := range argv {
		n += 1 + digits(len(a)) + 2 + len(a) + 2
	}
	return n == len(raw)
}

// digits returns the number of decimal digits of n >= 0.
func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// Apply runs a command received from the master's replication stream, as
// a Redis replica does for its master link: no reply, no propagate call,
// writes accepted in read-only mode, and keys whose time has passed are
// still visible, since only the master's DEL removes them. SELECT changes
// c.DB; MULTI ... EXEC blocks are buffered in c and run at EXEC. It returns
// an error for an unknown command, a wrong arity or any command that
// replied with an error (then nothing was changed by that command); the
// caller logs it and goes on with the stream.
func (s *Store) Apply(c *Client, argv [][]byte) error {
	return s.ApplyAtomically(c, argv, nil)
}

// ApplyAtomically is Apply followed by atomically (when not nil) in the same
// hold of the store lock, whatever the command's outcome: a replica records
// there the replication offset its data now reflect, so that the
// atomically function of a Snapshot, run under the same lock, reads an
// offset matching the captured data exactly. atomically must not call
// Store methods.
func (s *Store) ApplyAtomically(c *Client, argv [][]byte, atomically func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ApplyLocked(c, argv, atomically)
}

// BeginApply takes the store lock for a batch of replicated commands, which
// the caller then applies with ApplyLocked, on the same goroutine, until
// EndApply releases it: one lock hold for many commands (psync's
// BatchApplier). Nothing else may be called on the store in between.
func (s *Store) BeginApply() { s.mu.Lock() }

// EndApply ends a batch begun with BeginApply.
func (s *Store) EndApply() { s.mu.Unlock() }

// ApplyLocked is ApplyAtomically for a caller that holds the store lock
// through BeginApply.
func (s *Store) ApplyLocked(c *Client, argv [][]byte, atomically func()) error {
	if atomically != nil {
		defer atomically()
	}
	if len(argv) == 0 {
		return nil
	}
	s.applying, s.applyErr = true, nil
	s.scratch = s.dispatch(c, argv, nil, s.scratch[:0], true)
	err := s.applyErr
	s.applying, s.applyErr = false, nil
	clear(s.pending)
	s.pending = s.pending[:0]
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil
	}
	return err
}

// IsWrite reports whether the named command (any case) may change the
// dataset, such as for min-replicas-to-write checks. MULTI and EXEC are not
// writes themselves.
func (s *Store) IsWrite(name []byte) bool {
	cmd := lookupCommand(name)
	return cmd != nil && cmd.write
}

// Known reports whether the named command (any case) is implemented by
// Exec.
func (s *Store) Known(name []byte) bool { return lookupCommand(name) != nil }

// Classify is Known and IsWrite in one look-up of the command table.
func (s *Store) Classify(name []byte) (known, write bool) {
	cmd := lookupCommand(name)
	return cmd != nil, cmd != nil && cmd.write
}

// dispatch checks and runs (or queues) one command; raw is nil or argv's
// RESP encoding.
func (s *Store) dispatch(c *Client, argv [][]byte, raw, out []byte, master bool) []byte {
	cmd := lookupCommand(argv[0])
	x := &execCtx{s: s, c: c, argv: argv, out: out, master: master}
	if cmd == nil {
		x.err(unknownCommandError(argv))
		if c.multi {
			c.multiDirty = true
		}
		return x.out
	}
	if !arityOK(cmd, len(argv)) {
		x.err("ERR wrong number of arguments for '" + cmd.name + "' command")
		if c.multi {
			c.multiDirty = true
		}
		return x.out
	}
	if cmd.write && s.readOnly && !master {
		x.err(errReadOnly)
		if c.multi {
			c.multiDirty = true
		}
		return x.out
	}
	if c.multi && !cmd.txControl {
		c.queue = append(c.queue, copyArgv(argv))
		return psync.AppendSimpleString(x.out, "QUEUED")
	}
	return s.run(c, cmd, argv, raw, x.out, master)
}

// run executes a checked command; raw is nil or argv's RESP encoding.
func (s *Store) run(c *Client, cmd *command, argv [][]byte, raw, out []byte, master bool) []byte {
	if c.DB < 0 || c.DB >= len(s.dbs) {
		c.DB = 0
	}
	// Contexts are reused (a command runs inside another one only under
	// EXEC, hence a free list): escaping to cmd.fn, each would otherwise
	// cost an allocation per command.
	var x *execCtx
	if n := len(s.freeCtx); n > 0 {
		x, s.freeCtx = s.freeCtx[n-1], s.freeCtx[:n-1]
	} else {
		x = new(execCtx)
	}
	*x = execCtx{
		s: s, c: c, cmd: cmd, argv: argv, raw: raw, out: out, master: master,
		dbIndex: c.DB, db: s.dbs[c.DB],
	}
	cmd.fn(x)
	out = x.out
	*x = execCtx{}
	s.freeCtx = append(s.freeCtx, x)
	return out
}

// flush hands the pending writes to the propagate hook, wrapped in MULTI
// and EXEC when there is more than one, as Redis 7.0 does.
func (s *Store) flush() {
	ops := s.pending
	if len(ops) == 0 {
		return
	}
	if fn := s.propagate; fn != nil {
		s.propagated = true
		if len(ops) > 1 {
			fn(ops[0].db, argvMULTI, rawMULTI)
		}
		for _, o := range ops {
			fn(o.db, o.argv, o.raw)
		}
		if len(ops) > 1 {
			fn(ops[len(ops)-1].db, argvEXEC, rawEXEC)
		}
	}
	clear(ops)
	s.pending = ops[:0]
}

// propagateNow sends one command to the hook at once, outside the pending
// unit: Redis propagates the DEL of a lazily expired key this way.
func (s *Store) propagateNow(db int, argv ...[]byte) {
	if s.propagate != nil {
		s.propagated = true
		s.propagate(db, argv, nil)
	}
}

// execCtx is the state of one running command.
type execCtx struct {
	s       *Store
	c       *Client
	cmd     *command
	argv    [][]byte
	raw     []byte // argv's RESP encoding as the client sent it, or nil
	out     []byte
	dbIndex int
	db      *db
	now     int64 // unix ms, fixed for the command once read (see nowMs); 0 until then
	master  bool  // from the master's replication stream (Apply)
}

// nowMs returns the command's time in unix ms, reading the clock on first
// use only: most writes (a SET of a key without expiry) never need it.
func (x *execCtx) nowMs() int64 {
	if x.now == 0 {
		x.now = x.s.now().UnixMilli()
	}
	return x.now
}

// err appends an error reply; msg carries its code, as "ERR ...".
func (x *execCtx) err(msg string) {
	x.out = psync.AppendError(x.out, msg)
	if x.s.applying && x.s.applyErr == nil {
		x.s.applyErr = errors.New("kv: " + msg)
	}
}

// propagate records a write to send to replicas once the command (or
// transaction) completes.
func (x *execCtx) propagate(argv ...[]byte) {
	if x.master {
		return
	}
	x.s.pending = append(x.s.pending, op{db: x.dbIndex, argv: argv})
}

// propagateAsIs records the command as the client sent it, with the
// client's bytes when they are known.
func (x *execCtx) propagateAsIs() {
	if x.master {
		return
	}
	x.s.pending = append(x.s.pending, op{db: x.dbIndex, argv: x.argv, raw: x.raw})
}

func copyArgv(argv [][]byte) [][]byte {
	n := 0
	for _, a := range argv {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(argv))
	for i, a := range argv {
		s := len(buf)
		buf = append(buf, a...)
		out[i] = buf[s:len(buf):len(buf)]
	}
	return out
}
