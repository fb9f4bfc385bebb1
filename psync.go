package psync

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// This file holds what crosses a replication link: RESP framing of commands
// and replies, the handshake a replica sends, the master's replies to it, and
// the master's partial-or-full decision.

// Limits bounds what a peer can make psync buffer. The zero value means the
// documented defaults. No allocation is ever sized by a number read from the
// wire: buffers grow only as bytes actually arrive, up to these limits.
type Limits struct {
	// MaxBulk is the largest bulk string accepted. Default 512 MiB, Redis's
	// proto-max-bulk-len.
	MaxBulk int64
	// MaxArgs is the largest number of arguments in one command. Default
	// 1,048,576.
	MaxArgs int
	// MaxInline is the longest inline command or reply line. Default 64 KiB.
	MaxInline int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBulk <= 0 {
		l.MaxBulk = 512 << 20
	}
	if l.MaxArgs <= 0 {
		l.MaxArgs = 1 << 20
	}
	if l.MaxInline <= 0 {
		l.MaxInline = 64 << 10
	}
	return l
}

// Command is one command read from a RESP stream.
type Command struct {
	// Args are the command's arguments, Args[0] being its name.
	Args [][]byte
	// Raw is the exact bytes the command took on the wire; on a replication
	// link these are the bytes that count in offsets.
	Raw []byte
	// Offset is set on commands handed to an Applier: the replica's processed
	// offset once this command is applied.
	Offset int64
}

// Name returns the command name in upper case ("" for an empty command).
func (c *Command) Name() string {
	if len(c.Args) == 0 {
		return ""
	}
	return strings.ToUpper(string(c.Args[0]))
}

// Is reports whether the command name equals name, ignoring case, without
// allocating.
func (c *Command) Is(name string) bool {
	return len(c.Args) > 0 && equalFold(c.Args[0], name)
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

const minReadBuf = 4 << 10

// CommandReader reads RESP commands (arrays of bulk strings, and optionally
// inline commands) from an io.Reader, keeping each command's raw bytes. It
// buffers internally; Buffered returns what it read beyond the last command.
// A CommandReader is not safe for concurrent use.
type CommandReader struct {
	rd     io.Reader
	lim    Limits
	inline bool

	buf  []byte
	r, w int // buf[r:w] is unread
	err  error

	args  [][]byte
	spans []int // start,end pairs of args relative to r while parsing
	// parse progress of the command starting at r, kept across refills so a
	// command arriving in many pieces is not re-parsed from its start.
	pn, pi, poff int

	consumed int64
}

// NewCommandReader returns a reader of RESP commands from rd with the given
// limits. When inline is true, commands not starting with '*' are read as
// inline commands (space separated words), as Redis accepts from clients; on
// a replication stream they are a protocol error.
func NewCommandReader(rd io.Reader, lim Limits, inline bool) *CommandReader {
	return newCommandReader(rd, lim, inline, 16<<10)
}

func newCommandReader(rd io.Reader, lim Limits, inline bool, size int) *CommandReader {
	return &CommandReader{rd: rd, lim: lim.withDefaults(), inline: inline, buf: make([]byte, size), pn: -1}
}

// Buffered returns the bytes read from the underlying reader but not yet
// consumed, so a host that hands the connection to psync can pass them on.
func (c *CommandReader) Buffered() []byte { return c.buf[c.r:c.w] }

// Consumed returns the total number of bytes consumed by commands and lines
// read so far.
func (c *CommandReader) Consumed() int64 { return c.consumed }

// fill reads more bytes, compacting or growing the buffer as needed but never
// beyond need bytes of unread data plus what arrives. It returns the sticky
// read error once the underlying reader fails.
func (c *CommandReader) fill() error {
	if c.err != nil {
		return c.err
	}
	if c.w == len(c.buf) {
		if c.r > 0 {
			n := copy(c.buf, c.buf[c.r:c.w])
			c.r, c.w = 0, n
		} else {
			nb := make([]byte, 2*len(c.buf))
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
	}
	for i := 0; i < 100; i++ {
		n, err := c.rd.Read(c.buf[c.w:])
		c.w += n
		if err != nil {
			c.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	c.err = io.ErrNoProgress
	return c.err
}

// eofErr turns a clean EOF in the middle of something into ErrUnexpectedEOF.
func midEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadCommand reads the next command. The returned Args and Raw alias the
// reader's buffer and are valid only until the next call. An empty array
// (*0 or *-1) yields a Command with no Args. Malformed input returns an error
// wrapping ErrProtocol (and ErrTooLarge for sizes over the limits); the end of
// input before a command starts returns io.EOF, inside one
// io.ErrUnexpectedEOF.
func (c *CommandReader) ReadCommand() (Command, error) {
	for {
		if c.r == c.w {
			if c.w == len(c.buf) || c.r > 0 {
				c.r, c.w = 0, 0
			}
			if err := c.fill(); err != nil {
				return Command{}, err
			}
			continue
		}
		var cmd Command
		var ok bool
		var err error
		if c.buf[c.r] == '*' {
			cmd, ok, err = c.parseArray()
		} else if c.inline {
			cmd, ok, err = c.parseInline()
		} else {
			return Command{}, fmt.Errorf("%w: expected '*', got %q", ErrProtocol, c.buf[c.r])
		}
		if err != nil {
			return Command{}, err
		}
		if ok {
			return cmd, nil
		}
		if err := c.fill(); err != nil {
			return Command{}, midEOF(err)
		}
	}
}

// line finds a CRLF-terminated line starting at from; it returns the index of
// '\r' (or -1 if the line is incomplete).
func (c *CommandReader) line(from, max int) (int, error) {
	i := bytes.IndexByte(c.buf[from:c.w], '\n')
	if i < 0 {
		if c.w-from > max {
			return -1, fmt.Errorf("%w: %w: line longer than %d bytes", ErrProtocol, ErrTooLarge, max)
		}
		return -1, nil
	}
	if i == 0 || c.buf[from+i-1] != '\r' {
		return -1, fmt.Errorf("%w: line not terminated by CRLF", ErrProtocol)
	}
	return from + i - 1, nil
}

// parseInt parses a RESP length: an optional '-' and up to 18 digits.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

const maxHeaderLine = 32

// scanLen parses the length line of an array or bulk header whose type byte
// is at p: digits (with an optional '-') then CRLF. It returns the length and
// the index after the CRLF, or next < 0 when the line is incomplete.
func (c *CommandReader) scanLen(p int) (n int64, next int, err error) {
	i := p + 1
	neg := false
	if i < c.w && c.buf[i] == '-' {
		neg = true
		i++
	}
	digits := 0
	for ; i < c.w; i++ {
		ch := c.buf[i]
		if ch < '0' || ch > '9' {
			break
		}
		if digits == 18 {
			return 0, -1, fmt.Errorf("%w: %w: length line too long", ErrProtocol, ErrTooLarge)
		}
		n = n*10 + int64(ch-'0')
		digits++
	}
	if i+1 >= c.w {
		return 0, -1, nil // incomplete
	}
	if digits == 0 || c.buf[i] != '\r' || c.buf[i+1] != '\n' {
		return 0, -1, fmt.Errorf("%w: bad length line %q", ErrProtocol, truncate(string(c.buf[p:min(i+2, c.w)]), 32))
	}
	if neg {
		n = -n
	}
	return n, i + 2, nil
}

func (c *CommandReader) parseArray() (Command, bool, error) {
	if c.pn < 0 {
		n, next, err := c.scanLen(c.r)
		if next < 0 {
			return Command{}, false, err
		}
		if n > int64(c.lim.MaxArgs) {
			return Command{}, false, fmt.Errorf("%w: %w: %d arguments, limit %d", ErrProtocol, ErrTooLarge, n, c.lim.MaxArgs)
		}
		if n < 0 {
			n = 0
		}
		c.pn, c.pi, c.poff = int(n), 0, next-c.r
		c.spans = c.spans[:0]
	}
	for c.pi < c.pn {
		p := c.r + c.poff
		if p >= c.w {
			return Command{}, false, nil
		}
		if c.buf[p] != '$' {
			return Command{}, false, fmt.Errorf("%w: expected '$', got %q", ErrProtocol, c.buf[p])
		}
		l, start, err := c.scanLen(p)
		if start < 0 {
			return Command{}, false, err
		}
		if l < 0 {
			return Command{}, false, fmt.Errorf("%w: negative bulk length %d", ErrProtocol, l)
		}
		if l > c.lim.MaxBulk {
			return Command{}, false, fmt.Errorf("%w: %w: bulk of %d bytes, limit %d", ErrProtocol, ErrTooLarge, l, c.lim.MaxBulk)
		}
		if int64(c.w-start) < l+2 {
			return Command{}, false, nil
		}
		end := start + int(l)
		if c.buf[end] != '\r' || c.buf[end+1] != '\n' {
			return Command{}, false, fmt.Errorf("%w: bulk string not terminated by CRLF", ErrProtocol)
		}
		c.spans = append(c.spans, start-c.r, end-c.r)
		c.poff = end + 2 - c.r
		c.pi++
	}
	args := c.args[:0]
	base := c.buf[c.r:]
	for i := 0; i < len(c.spans); i += 2 {
		s, e := c.spans[i], c.spans[i+1]
		args = append(args, base[s:e:e])
	}
	c.args = args
	raw := base[:c.poff:c.poff]
	c.r += c.poff
	c.consumed += int64(c.poff)
	c.pn = -1
	return Command{Args: args, Raw: raw}, true, nil
}

func (c *CommandReader) parseInline() (Command, bool, error) {
	i := bytes.IndexByte(c.buf[c.r:c.w], '\n')
	if i < 0 {
		if c.w-c.r > c.lim.MaxInline {
			return Command{}, false, fmt.Errorf("%w: %w: inline command longer than %d bytes", ErrProtocol, ErrTooLarge, c.lim.MaxInline)
		}
		return Command{}, false, nil
	}
	end := c.r + i
	lineEnd := end
	if lineEnd > c.r && c.buf[lineEnd-1] == '\r' {
		lineEnd--
	}
	args := c.args[:0]
	for _, f := range bytes.Fields(c.buf[c.r:lineEnd]) {
		if len(args) >= c.lim.MaxArgs {
			return Command{}, false, fmt.Errorf("%w: %w: too many inline arguments", ErrProtocol, ErrTooLarge)
		}
		args = append(args, f)
	}
	c.args = args
	raw := c.buf[c.r : end+1 : end+1]
	c.consumed += int64(end + 1 - c.r)
	c.r = end + 1
	return Command{Args: args, Raw: raw}, true, nil
}

// ReadLine reads one CRLF- or LF-terminated line (a reply such as +PONG or
// +FULLRESYNC ...) and returns it without the terminator, aliasing the
// buffer until the next call.
func (c *CommandReader) ReadLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[c.r:c.w], '\n'); i >= 0 {
			l := c.buf[c.r : c.r+i]
			c.r += i + 1
			c.consumed += int64(i + 1)
			if len(l) > 0 && l[len(l)-1] == '\r' {
				l = l[:len(l)-1]
			}
			return l, nil
		}
		if c.w-c.r > c.lim.MaxInline {
			return nil, fmt.Errorf("%w: %w: reply line longer than %d bytes", ErrProtocol, ErrTooLarge, c.lim.MaxInline)
		}
		if err := c.fill(); err != nil {
			return nil, midEOF(err)
		}
	}
}

// SyncRequest is a replica's request for the stream: PSYNC <replid> <offset>
// or the legacy SYNC.
type SyncRequest struct {
	// Legacy is true for SYNC: a full resync with no +FULLRESYNC line, after
	// which the peer can never continue partially.
	Legacy bool
	// ReplID is the history the replica has, "" for "?" (none).
	ReplID ReplID
	// Offset is the first byte the replica wants: its processed offset + 1.
	// It is -1 with "?".
	Offset int64
}

// ParseSyncRequest parses the arguments of a PSYNC or SYNC command (args[0]
// being the command name). Malformed arguments return an error wrapping
// ErrProtocol and ErrBadReplID or ErrBadOffset.
func ParseSyncRequest(args [][]byte) (SyncRequest, error) {
	if len(args) == 0 {
		return SyncRequest{}, fmt.Errorf("%w: empty command", ErrProtocol)
	}
	switch {
	case equalFold(args[0], "sync"):
		if len(args) != 1 {
			return SyncRequest{}, fmt.Errorf("%w: wrong number of arguments for 'sync' command", ErrProtocol)
		}
		return SyncRequest{Legacy: true, Offset: -1}, nil
	case equalFold(args[0], "psync"):
	default:
		return SyncRequest{}, fmt.Errorf("%w: %q is not PSYNC or SYNC", ErrProtocol, args[0])
	}
	if len(args) != 3 {
		return SyncRequest{}, fmt.Errorf("%w: wrong number of arguments for 'psync' command", ErrProtocol)
	}
	off, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || off > MaxOffset {
		return SyncRequest{}, fmt.Errorf("%w: %w: %q", ErrProtocol, ErrBadOffset, args[2])
	}
	if string(args[1]) == "?" {
		return SyncRequest{Offset: off}, nil
	}
	id, err := ParseReplID(string(args[1]))
	if err != nil {
		return SyncRequest{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return SyncRequest{ReplID: id, Offset: off}, nil
}

// ReplicaInfo is what a replica announced during its handshake.
type ReplicaInfo struct {
	// ListeningPort is from REPLCONF listening-port (0 if not sent).
	ListeningPort int
	// IPAddress is from REPLCONF ip-address ("" if not sent).
	IPAddress string
	// CapaEOF: the replica takes a diskless snapshot with an EOF mark.
	CapaEOF bool
	// CapaPSYNC2: the replica understands +CONTINUE <replid>.
	CapaPSYNC2 bool
	// RDBOnly: the peer (redis-cli --rdb) wants the snapshot only.
	RDBOnly bool
}

// Replconf applies the arguments of a REPLCONF command sent before PSYNC
// (args[0] being "REPLCONF") to info. Unknown options and capabilities are
// ignored, as Redis does; a malformed value returns an error wrapping
// ErrProtocol, which the host answers with -ERR.
func (info *ReplicaInfo) Replconf(args [][]byte) error {
	if len(args)%2 != 1 {
		return fmt.Errorf("%w: REPLCONF takes option/value pairs", ErrProtocol)
	}
	for i := 1; i+1 < len(args); i += 2 {
		opt, val := args[i], args[i+1]
		switch {
		case equalFold(opt, "listening-port"):
			p, err := strconv.Atoi(string(val))
			if err != nil || p < 0 || p > 65535 {
				return fmt.Errorf("%w: bad listening-port %q", ErrProtocol, val)
			}
			info.ListeningPort = p
		case equalFold(opt, "ip-address"):
			if len(val) > 255 {
				return fmt.Errorf("%w: ip-address too long", ErrProtocol)
			}
			info.IPAddress = string(val)
		case equalFold(opt, "capa"):
			switch {
			case equalFold(val, "eof"):
				info.CapaEOF = true
			case equalFold(val, "psync2"):
				info.CapaPSYNC2 = true
			}
		case equalFold(opt, "rdb-only"):
			info.RDBOnly = string(val) == "1"
		}
	}
	return nil
}

// Decision is the master's answer to a PSYNC: a partial resync from the
// backlog or a full resync with a snapshot, and why.
type Decision struct {
	Partial bool
	Reason  string
}

// MasterState is what the master's partial-or-full decision depends on.
type MasterState struct {
	ReplID       ReplID
	ReplID2      ReplID
	SecondOffset int64 // last offset of the ReplID2 history + 1; -1 if none
	Offset       int64 // master_repl_offset
	BacklogFirst int64 // first byte held; Offset+1 when empty
	HasBacklog   bool
}

// Decide is the master's partial-or-full decision for a sync request, as
// Redis 7's masterTryPartialResynchronization makes it:
//   - SYNC and PSYNC ? are full;
//   - the ID must be the master's ReplID, or its ReplID2 with the offset at
//     most SecondOffset (the byte the old history would have sent next);
//   - the backlog must exist and hold the offset: BacklogFirst <= offset <=
//     Offset+1 (Offset+1 is partial with nothing to send).
func Decide(st MasterState, req SyncRequest) Decision {
	switch {
	case req.Legacy:
		return Decision{Reason: "legacy SYNC"}
	case req.ReplID == "":
		return Decision{Reason: "replica has no history (PSYNC ?)"}
	case req.ReplID != st.ReplID && req.ReplID != st.ReplID2:
		return Decision{Reason: fmt.Sprintf("replication id %s unknown", req.ReplID)}
	case req.ReplID != st.ReplID && req.Offset > st.SecondOffset:
		return Decision{Reason: fmt.Sprintf("offset %d past the end %d of the previous history %s", req.Offset, st.SecondOffset, req.ReplID)}
	case !st.HasBacklog:
		return Decision{Reason: "no backlog"}
	case req.Offset < st.BacklogFirst:
		return Decision{Reason: fmt.Sprintf("offset %d left the backlog (first byte %d)", req.Offset, st.BacklogFirst)}
	case req.Offset > st.Offset+1:
		return Decision{Reason: fmt.Sprintf("offset %d ahead of the master offset %d", req.Offset, st.Offset)}
	}
	return Decision{Partial: true, Reason: "backlog covers the offset"}
}

// Reply lines of the master.
func appendFullResync(dst []byte, id ReplID, off int64) []byte {
	dst = append(dst, "+FULLRESYNC "...)
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, off, 10)
	return append(dst, '\r', '\n')
}

func appendContinue(dst []byte, id ReplID) []byte {
	dst = append(dst, "+CONTINUE"...)
	if id != "" {
		dst = append(dst, ' ')
		dst = append(dst, id...)
	}
	return append(dst, '\r', '\n')
}

// psyncReply is the master's answer to PSYNC as the replica parses it.
type psyncReply struct {
	full   bool
	id     ReplID // "" with a bare +CONTINUE
	offset int64  // with +FULLRESYNC
}

// parsePSYNCReply parses the reply line to PSYNC (without CRLF).
func parsePSYNCReply(line []byte) (psyncReply, error) {
	s := string(line)
	switch {
	case strings.HasPrefix(s, "+FULLRESYNC"):
		f := strings.Fields(s)
		if len(f) != 3 {
			return psyncReply{}, fmt.Errorf("%w: %q", ErrUnexpectedReply, s)
		}
		id, err := ParseReplID(f[1])
		if err != nil {
			return psyncReply{}, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		off, err := ParseOffset(f[2])
		if err != nil {
			return psyncReply{}, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		return psyncReply{full: true, id: id, offset: off}, nil
	case s == "+CONTINUE":
		return psyncReply{}, nil
	case strings.HasPrefix(s, "+CONTINUE "):
		id, err := ParseReplID(strings.TrimSpace(s[len("+CONTINUE "):]))
		if err != nil {
			return psyncReply{}, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		return psyncReply{id: id}, nil
	case strings.HasPrefix(s, "-NOAUTH"), strings.HasPrefix(s, "-WRONGPASS"), strings.HasPrefix(s, "-NOPERM"):
		return psyncReply{}, fmt.Errorf("%w: %w: %s", ErrUnexpectedReply, ErrAuth, s)
	}
	return psyncReply{}, fmt.Errorf("%w: %q", ErrUnexpectedReply, truncate(s, 200))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
