package main

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/examples/kvserver/internal/kv"
)

// Client kinds, as CLIENT KILL TYPE names them.
const (
	kindNormal int32 = iota
	kindReplica
)

// conn is one client connection. Its goroutine reads commands, runs them
// and appends the replies to out, which is written when the connection runs
// out of buffered input (see flushReader): a pipelined batch gets its
// replies in one write. The data commands of such a batch also run under
// one hold of the store lock (batch), released before any server command
// and before the connection reads or writes.
type conn struct {
	s       *server
	id      int64
	nc      net.Conn
	cr      *psync.CommandReader
	out     []byte
	batch   kv.Batch
	kc      kv.Client
	authed  bool
	info    psync.ReplicaInfo // from REPLCONF, for a replica's PSYNC
	woff    int64             // master offset after this client's last write, for WAIT
	wrote   bool              // the batch ran a write: woff is set when it ends
	ncmds   int64             // commands run since the last flush, not yet in s.totalCmds
	created time.Time

	kind    atomic.Int32
	db      atomic.Int32
	name    atomic.Pointer[string]
	lastCmd atomic.Pointer[string]
	names   map[string]*string // interned command names, for lastCmd
	lastAt  atomic.Int64       // unix ns of the last read of commands
}

func newConn(s *server, nc net.Conn) *conn {
	c := &conn{s: s, id: s.nextID.Add(1), nc: nc, batch: s.store.Batch(), created: time.Now(), authed: s.cfg.RequirePass == "", names: map[string]*string{}}
	c.cr = psync.NewCommandReader(flushReader{c}, psync.Limits{}, true)
	c.lastAt.Store(time.Now().UnixNano())
	return c
}

// flushReader writes the pending replies before it blocks for more input,
// so replies go out once per batch of buffered commands.
type flushReader struct{ c *conn }

func (f flushReader) Read(p []byte) (int, error) {
	if err := f.c.flush(); err != nil {
		return 0, err
	}
	n, err := f.c.nc.Read(p)
	if n > 0 {
		f.c.lastAt.Store(time.Now().UnixNano())
	}
	return n, err
}

// endBatch releases the store lock the connection's batch holds, if any;
// the batch's writes are in the Master's stream from then on.
func (c *conn) endBatch() {
	if !c.batch.Held() {
		return
	}
	c.batch.End()
	if c.wrote {
		c.woff, c.wrote = c.s.m.Offset(), false
	}
}

// settle ends the batch and publishes the shared figures its commands
// changed (the command count): once per batch, as an atomic operation per
// command would stall on the memory writes of the command before it.
func (c *conn) settle() {
	c.endBatch()
	if c.ncmds > 0 {
		c.s.totalCmds.Add(c.ncmds)
		c.ncmds = 0
	}
}

// flush settles the batch and writes the pending replies.
func (c *conn) flush() error {
	c.settle()
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// action tells the read loop what to do after a command.
type action int

const (
	actContinue action = iota
	actClose           // QUIT
	actHandoff         // the connection now belongs to psync
)

func (c *conn) serve() {
	defer c.nc.Close()
	defer c.settle()
	for {
		cmd, err := c.cr.ReadCommand()
		if err != nil {
			if errors.Is(err, psync.ErrProtocol) {
				c.out = psync.AppendError(c.out, "ERR Protocol error: "+oneLine(err.Error()))
				_ = c.flush()
			}
			return
		}
		if len(cmd.Args) == 0 {
			continue
		}
		c.ncmds++
		switch c.dispatch(cmd) {
		case actClose:
			_ = c.flush()
			return
		case actHandoff:
			return
		}
		if len(c.out) >= 64<<10 {
			if c.flush() != nil {
				return
			}
		}
	}
}

// lowerName returns the command name in lower case, in buf when it fits.
func lowerName(buf []byte, name []byte) []byte {
	if len(name) > cap(buf) {
		return bytes.ToLower(name)
	}
	buf = buf[:len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return buf
}

func (c *conn) reply(b []byte)      { c.out = append(c.out, b...) }
func (c *conn) ok()                 { c.out = psync.AppendSimpleString(c.out, "OK") }
func (c *conn) errReply(msg string) { c.out = psync.AppendError(c.out, msg) }
func (c *conn) intReply(n int64)    { c.out = psync.AppendInt(c.out, n) }
func (c *conn) bulkString(s string) { c.out = psync.AppendBulkString(c.out, s) }
func (c *conn) arrayHeader(n int)   { c.out = psync.AppendArray(c.out, n) }
func (c *conn) simple(s string)     { c.out = psync.AppendSimpleString(c.out, s) }
func (c *conn) wrongArity(cmd string) {
	c.errReply("ERR wrong number of arguments for '" + cmd + "' command")
}

func (c *conn) dispatch(cmd psync.Command) action {
	s := c.s
	args := cmd.Args
	var nb [24]byte
	name := lowerName(nb[:0], args[0])
	known, write := s.store.Classify(args[0])
	if !known {
		// A server command (or an unknown one): never under the store
		// lock, as some block or call into the store; INFO counts the
		// commands before it.
		c.settle()
	}
	if !c.authed {
		switch string(name) {
		case "auth", "quit":
		default:
			c.errReply("NOAUTH Authentication required.")
			return actContinue
		}
	}
	switch string(name) {
	case "auth":
		c.auth(args)
	case "quit":
		c.ok()
		return actClose
	case "command":
		c.command(args)
	case "config":
		c.config(args)
	case "client":
		c.client(args)
	case "info":
		c.reply(s.info(args[1:]))
	case "replicaof", "slaveof":
		c.replicaof(args)
	case "role":
		c.role()
	case "wait":
		c.wait(args)
	case "replconf":
		if len(args) >= 2 && (equalFold(args[1], "ack") || equalFold(args[1], "getack") || equalFold(args[1], "fack")) {
			return actContinue // not a replica yet: ignored without a reply, as Redis
		}
		if err := c.info.Replconf(args); err != nil {
			c.errReply("ERR " + oneLine(err.Error()))
		} else {
			c.ok()
		}
	case "psync", "sync":
		return c.sync(args)
	case "shutdown":
		// Nothing to save. As Redis, no reply: the connection just closes.
		s.log.Info("SHUTDOWN requested", "client", c.nc.RemoteAddr().String())
		go s.Close()
		return actClose
	default:
		c.exec(cmd, name, write)
	}
	return actContinue
}

// exec runs a data command in the kv engine; name is argv[0] in lower case
// and write tells whether the engine counts it as a write. The command's
// wire bytes go along: a write propagated unchanged is fed to the stream as
// the client sent it.
func (c *conn) exec(cmd psync.Command, name []byte, write bool) {
	s := c.s
	if write && s.minReplicas.Load() > 0 {
		c.endBatch() // the check asks the Master, never under the store lock
		if !s.checkMinReplicas() {
			c.errReply("NOREPLICAS Not enough good replicas to write.")
			return
		}
	}
	c.out = c.batch.Exec(&c.kc, cmd, c.out)
	if write || string(name) == "exec" {
		c.wrote = true
	}
	if db := int32(c.kc.DB); c.db.Load() != db {
		c.db.Store(db)
	}
	c.setLastCmd(name)
}

// setLastCmd records the command name for CLIENT LIST, interning names so
// the hot path does not allocate.
func (c *conn) setLastCmd(name []byte) {
	p, ok := c.names[string(name)]
	if !ok {
		if len(c.names) >= 64 {
			clear(c.names)
		}
		n := string(name)
		p = &n
		c.names[n] = p
	}
	if c.lastCmd.Load() != p {
		c.lastCmd.Store(p)
	}
}

func equalFold(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

func (c *conn) auth(args [][]byte) {
	pass := c.s.cfg.RequirePass
	var user, pw []byte
	switch len(args) {
	case 2:
		user, pw = []byte("default"), args[1]
	case 3:
		user, pw = args[1], args[2]
	default:
		c.errReply("ERR syntax error")
		return
	}
	if pass == "" && len(args) == 2 {
		c.errReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	u := subtle.ConstantTimeCompare(user, []byte("default"))
	p := subtle.ConstantTimeCompare(pw, []byte(pass))
	if pass == "" {
		p = 1 // the default user has no password: any is accepted
	}
	if u&p != 1 {
		c.errReply("WRONGPASS invalid username-password pair or user is disabled.")
		return
	}
	c.authed = true
	c.ok()
}

// command answers COMMAND minimally: enough for redis-cli and
// redis-benchmark, which fall back to their built-in tables.
func (c *conn) command(args [][]byte) {
	if len(args) == 1 {
		c.arrayHeader(0)
		return
	}
	switch {
	case equalFold(args[1], "count"):
		c.intReply(0)
	case equalFold(args[1], "docs"), equalFold(args[1], "list"):
		c.arrayHeader(0)
	case equalFold(args[1], "info"):
		c.arrayHeader(len(args) - 2)
		for range args[2:] {
			c.out = psync.AppendArray(c.out, -1)
		}
	default:
		c.errReply("ERR unknown subcommand '" + oneLine(string(args[1])) + "'. Try COMMAND HELP.")
	}
}

func (c *conn) config(args [][]byte) {
	s := c.s
	if len(args) < 2 {
		c.wrongArity("config")
		return
	}
	switch {
	case equalFold(args[1], "get"):
		if len(args) < 3 {
			c.wrongArity("config|get")
			return
		}
		cfg := s.currentConfig()
		var pairs []string
		seen := map[string]bool{}
		for _, p := range args[2:] {
			kv := cfg.configGet(string(p))
			for i := 0; i < len(kv); i += 2 {
				if !seen[kv[i]] {
					seen[kv[i]] = true
					pairs = append(pairs, kv[i], kv[i+1])
				}
			}
		}
		c.arrayHeader(len(pairs))
		for _, v := range pairs {
			c.bulkString(v)
		}
	case equalFold(args[1], "set"):
		if len(args) < 4 || len(args)%2 != 0 {
			c.wrongArity("config|set")
			return
		}
		for i := 2; i < len(args); i += 2 {
			if err := s.configSet(strings.ToLower(string(args[i])), string(args[i+1])); err != nil {
				c.errReply("ERR CONFIG SET failed (possibly related to argument '" + oneLine(string(args[i])) + "') - " + oneLine(err.Error()))
				return
			}
		}
		c.ok()
	case equalFold(args[1], "resetstat"):
		c.ok()
	case equalFold(args[1], "rewrite"):
		c.errReply("ERR The server is running without a config file")
	default:
		c.errReply("ERR unknown subcommand '" + oneLine(string(args[1])) + "'. Try CONFIG HELP.")
	}
}

// currentConfig returns the configuration with the values CONFIG SET and
// REPLICAOF change at run time.
func (s *server) currentConfig() config {
	cfg := s.cfg
	cfg.MinReplicasToWrite = int(s.minReplicas.Load())
	cfg.MinReplicasMaxLag = time.Duration(s.maxLag.Load())
	s.roleMu.Lock()
	if rl := s.replica; rl != nil {
		cfg.ReplicaOfHost, cfg.ReplicaOfPort = rl.host, rl.port
	} else {
		cfg.ReplicaOfHost, cfg.ReplicaOfPort = "", 0
	}
	s.roleMu.Unlock()
	return cfg
}

// configSet changes the parameters that can change at run time.
func (s *server) configSet(name, value string) error {
	switch name {
	case "min-replicas-to-write", "min-slaves-to-write", "min-replicas-max-lag", "min-slaves-max-lag":
		cfg := s.currentConfig()
		if err := cfg.set(name, []string{value}); err != nil {
			return err
		}
		s.minReplicas.Store(int64(cfg.MinReplicasToWrite))
		s.maxLag.Store(int64(cfg.MinReplicasMaxLag))
		return nil
	case "save", "appendonly":
		return nil // nothing is persisted anyway
	}
	return fmt.Errorf("parameter %s cannot be changed at run time by kvserver", name)
}

func (c *conn) client(args [][]byte) {
	s := c.s
	if len(args) < 2 {
		c.wrongArity("client")
		return
	}
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "id":
		c.intReply(c.id)
	case "setname":
		if len(args) != 3 {
			c.wrongArity("client|setname")
			return
		}
		n := string(args[2])
		if strings.ContainsAny(n, " \r\n") {
			c.errReply("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.name.Store(&n)
		c.ok()
	case "getname":
		if n := c.name.Load(); n != nil && *n != "" {
			c.bulkString(*n)
		} else {
			c.out = psync.AppendNull(c.out)
		}
	case "setinfo", "no-evict", "no-touch", "reply":
		c.ok()
	case "list":
		var b strings.Builder
		for _, o := range s.connections() {
			b.WriteString(o.describe())
			b.WriteByte('\n')
		}
		c.bulkString(b.String())
	case "info":
		c.bulkString(c.describe() + "\n")
	case "kill":
		c.clientKill(args[2:])
	default:
		c.errReply("ERR unknown subcommand '" + oneLine(string(args[1])) + "'. Try CLIENT HELP.")
	}
}

// describe renders the connection as a CLIENT LIST line.
func (c *conn) describe() string {
	name := ""
	if n := c.name.Load(); n != nil {
		name = *n
	}
	cmd := "NULL"
	if p := c.lastCmd.Load(); p != nil {
		cmd = *p
	}
	flags := "N"
	if c.kind.Load() == kindReplica {
		flags = "S"
	}
	now := time.Now()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=2",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), name, int(now.Sub(c.created).Seconds()),
		int(now.Sub(time.Unix(0, c.lastAt.Load())).Seconds()), flags, c.db.Load(), cmd)
}

// clientKill implements CLIENT KILL addr and CLIENT KILL <filter> <value>
// ... with the filters TYPE (normal, master, replica, slave, pubsub), ID,
// ADDR and SKIPME. TYPE master cuts this replica's link to its master.
func (c *conn) clientKill(args [][]byte) {
	s := c.s
	if len(args) == 1 { // old form: CLIENT KILL ip:port
		for _, o := range s.connections() {
			if o.nc.RemoteAddr().String() == string(args[0]) {
				o.nc.Close()
				c.ok()
				return
			}
		}
		c.errReply("ERR No such client")
		return
	}
	if len(args) == 0 || len(args)%2 != 0 {
		c.errReply("ERR syntax error")
		return
	}
	typ, addr, id, skipme := "", "", int64(0), true
	for i := 0; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "type":
			typ = strings.ToLower(v)
			switch typ {
			case "normal", "master", "replica", "slave", "pubsub":
			default:
				c.errReply("ERR Unknown client type '" + oneLine(v) + "'")
				return
			}
		case "addr":
			addr = v
		case "id":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				c.errReply("ERR client-id should be greater than 0")
				return
			}
			id = n
		case "skipme":
			switch strings.ToLower(v) {
			case "yes":
				skipme = true
			case "no":
				skipme = false
			default:
				c.errReply("ERR syntax error")
				return
			}
		case "user", "laddr", "maxage":
			// accepted, not used for matching beyond what follows
		default:
			c.errReply("ERR syntax error")
			return
		}
	}
	killed := int64(0)
	if typ == "master" {
		s.roleMu.Lock()
		if rl := s.replica; rl != nil && addr == "" && id == 0 && rl.killLink() {
			killed++
			s.log.Info("connection with master killed by CLIENT KILL")
		}
		s.roleMu.Unlock()
		c.intReply(killed)
		return
	}
	for _, o := range s.connections() {
		if skipme && o == c {
			continue
		}
		k := o.kind.Load()
		switch typ {
		case "normal":
			if k != kindNormal {
				continue
			}
		case "replica", "slave":
			if k != kindReplica {
				continue
			}
		case "pubsub":
			continue
		}
		if addr != "" && o.nc.RemoteAddr().String() != addr {
			continue
		}
		if id != 0 && o.id != id {
			continue
		}
		o.nc.Close()
		killed++
	}
	c.intReply(killed)
}

func (c *conn) replicaof(args [][]byte) {
	s := c.s
	if len(args) != 3 {
		c.wrongArity(strings.ToLower(string(args[0])))
		return
	}
	if equalFold(args[1], "no") && equalFold(args[2], "one") {
		if err := s.becomeMaster(); err != nil {
			c.errReply("ERR " + oneLine(err.Error()))
			return
		}
		c.ok()
		return
	}
	port, err := strconv.Atoi(string(args[2]))
	if err != nil || port < 0 || port > 65535 {
		c.errReply("ERR Invalid master port")
		return
	}
	switch err := s.becomeReplica(string(args[1]), port); {
	case errors.Is(err, errAlreadyConnected):
		c.simple("OK Already connected to specified master")
	case err != nil:
		c.errReply("ERR " + oneLine(err.Error()))
	default:
		c.ok()
	}
}

// role answers ROLE in Redis's format.
func (c *conn) role() {
	s := c.s
	s.roleMu.Lock()
	rl := s.replica
	s.roleMu.Unlock()
	if rl != nil {
		st := rl.r.Stats()
		c.arrayHeader(5)
		c.bulkString("slave")
		c.bulkString(rl.host)
		c.intReply(int64(rl.port))
		c.bulkString(rl.linkState())
		off := int64(-1)
		if st.LinkUp {
			off = st.Offset
		}
		c.intReply(off)
		return
	}
	ms := s.m.Stats()
	c.arrayHeader(3)
	c.bulkString("master")
	c.intReply(ms.Offset)
	var rs []psync.ReplicaLinkStats
	for _, r := range ms.Replicas {
		if r.State == "online" {
			rs = append(rs, r)
		}
	}
	c.arrayHeader(len(rs))
	for _, r := range rs {
		c.arrayHeader(3)
		c.bulkString(hostOf(r.Addr))
		c.bulkString(strconv.Itoa(r.ListeningPort))
		c.bulkString(strconv.FormatInt(max(r.AckOffset, 0), 10))
	}
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (c *conn) wait(args [][]byte) {
	s := c.s
	if len(args) != 3 {
		c.wrongArity("wait")
		return
	}
	if s.isReplica.Load() {
		c.errReply("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
		return
	}
	n, err := strconv.ParseInt(string(args[1]), 10, 64)
	if err != nil {
		c.errReply("ERR value is not an integer or out of range")
		return
	}
	ms, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		c.errReply("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.errReply("ERR timeout is negative")
		return
	}
	_ = c.flush() // WAIT blocks: earlier replies of the batch go out first
	c.intReply(int64(s.waitAcks(int(n), time.Duration(ms)*time.Millisecond, c.woff)))
}

// sync hands the connection to psync after PSYNC or SYNC: the bytes the
// reader buffered beyond the command are replayed in front of the socket.
func (c *conn) sync(args [][]byte) action {
	s := c.s
	if c.kc.InMulti() {
		c.errReply("ERR Command not allowed inside a transaction")
		return actContinue
	}
	if err := c.flush(); err != nil {
		return actClose
	}
	c.kind.Store(kindReplica)
	c.setLastCmd(bytes.ToLower(args[0]))
	hc := &handoffConn{Conn: c.nc, pre: bytes.Clone(c.cr.Buffered())}
	err := s.m.ServeSync(s.ctx, hc, c.info, args)
	s.log.Debug("replica connection ended", "addr", c.nc.RemoteAddr().String(), "err", err)
	return actHandoff
}

// handoffConn is a net.Conn whose first reads return bytes already read
// from it.
type handoffConn struct {
	net.Conn
	pre []byte
}

func (h *handoffConn) Read(p []byte) (int, error) {
	if len(h.pre) > 0 {
		n := copy(p, h.pre)
		h.pre = h.pre[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}
