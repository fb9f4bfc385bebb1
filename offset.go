package psync

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ReplIDLen is the length of a replication ID: 40 lowercase hex characters.
const ReplIDLen = 40

// ReplID names one history of the replication stream. Two nodes that share a
// ReplID and an offset hold the same dataset. It is 40 lowercase hexadecimal
// characters; the zero value "" means "no history".
type ReplID string

// NoReplID is the ID Redis reports as master_replid2 when a node has no
// previous history: forty zeros.
const NoReplID ReplID = "0000000000000000000000000000000000000000"

// NewReplID returns a fresh random replication ID read from crypto/rand.
func NewReplID() ReplID {
	var b [ReplIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic(err)
	}
	return ReplID(hex.EncodeToString(b[:]))
}

// ParseReplID checks that s is 40 hexadecimal characters and returns it as a
// ReplID. Upper-case digits are accepted and folded to lower case. The error
// wraps ErrBadReplID.
func ParseReplID(s string) (ReplID, error) {
	if len(s) != ReplIDLen {
		return "", fmt.Errorf("%w: length %d, want %d", ErrBadReplID, len(s), ReplIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("%w: %q is not hexadecimal", ErrBadReplID, s)
		}
	}
	return ReplID(strings.ToLower(s)), nil
}

// Valid reports whether id is a well-formed replication ID.
func (id ReplID) Valid() bool {
	_, err := ParseReplID(string(id))
	return err == nil && string(id) == strings.ToLower(string(id))
}

// Position is a point in one history of the replication stream: the
// replication ID and the offset of the last byte processed (Redis's
// master_repl_offset on a master, slave_repl_offset on a replica). A replica
// that persists its dataset together with its Position can restart and
// continue partially: it asks the master for Offset+1.
//
// The zero Position means "no history"; such a replica asks PSYNC ? -1.
type Position struct {
	ID     ReplID
	Offset int64
}

// IsZero reports whether p names no history.
func (p Position) IsZero() bool { return p.ID == "" }

// String formats p as "<replid>:<offset>", the form MarshalText writes.
func (p Position) String() string {
	if p.IsZero() {
		return "?:-1"
	}
	return string(p.ID) + ":" + strconv.FormatInt(p.Offset, 10)
}

// MarshalText implements encoding.TextMarshaler, so a Position can be stored
// in JSON or any text format.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what
// MarshalText writes and validates both parts.
func (p *Position) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "?:-1" {
		*p = Position{}
		return nil
	}
	id, off, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%w: position %q has no ':'", ErrBadOffset, s)
	}
	rid, err := ParseReplID(id)
	if err != nil {
		return err
	}
	o, err := ParseOffset(off)
	if err != nil {
		return err
	}
	*p = Position{ID: rid, Offset: o}
	return nil
}

// MaxOffset is the largest offset psync accepts from the wire. Offsets are
// byte counts; 2^62 bytes leaves room for +1 arithmetic without overflow.
const MaxOffset = 1 << 62

// ParseOffset parses a decimal stream offset in [0, MaxOffset]. The error
// wraps ErrBadOffset.
func ParseOffset(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxOffset {
		return 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
	}
	return n, nil
}
