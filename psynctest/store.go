// Package psynctest provides what a host needs to test its replication
// without a network, as net/http/httptest does for HTTP: an in-memory store
// implementing psync's storage contracts, pipe dialers that connect replicas
// to a master in-process, and a connection wrapper that cuts or stalls a link
// at a chosen byte.
package psynctest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/psyncio/psync"
)

// ErrBadSnapshot is returned by Store.Load for a snapshot it cannot parse.
var ErrBadSnapshot = errors.New("psynctest: bad snapshot")

// ErrUnknownCommand is returned by Store.Apply for a command it does not
// implement.
var ErrUnknownCommand = errors.New("psynctest: unknown command")

// Store is a map-based key-value store implementing psync.Snapshotter (when
// attached to a Master with SetMaster), psync.Loader and psync.BatchApplier. It
// understands SET key value, DEL key..., INCRBY key n, APPEND key value,
// FLUSHALL, SELECT (ignored), and on a replica MULTI/EXEC/DISCARD blocks. It also checks the stream's invariants as it
// applies: every command must start exactly where the previous one ended, so
// a command applied twice or skipped is recorded and reported by Err.
//
// All methods are safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	data    map[string][]byte
	master  *psync.Master
	last    int64 // offset after the last command applied, -1 before any
	applied int64
	loads   int64
	err     error
	buf     []byte
	queue   [][][]byte // commands of an open MULTI block, nil outside one
	inMulti bool
	batched bool // between BeginBatch and EndBatch; only the applying goroutine
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{data: make(map[string][]byte), last: -1} }

// SetMaster attaches the store to the master it feeds: Set, Del and Exec
// then apply each write and feed it to m under the store's lock, and
// Snapshot reads m's offset under that same lock.
func (s *Store) SetMaster(m *psync.Master) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.master = m
}

// Exec applies a write given as arguments and, when attached to a master,
// feeds it to the stream atomically with the change.
func (s *Store) Exec(args ...string) error {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.apply(b); err != nil {
		return err
	}
	if s.master != nil {
		s.buf = psync.AppendCommand(s.buf[:0], b...)
		s.last = s.master.Feed(s.buf)
	}
	return nil
}

// Set is Exec("SET", key, value).
func (s *Store) Set(key, value string) error { return s.Exec("SET", key, value) }

// Del is Exec("DEL", keys...).
func (s *Store) Del(keys ...string) error { return s.Exec(append([]string{"DEL"}, keys...)...) }

func (s *Store) apply(args [][]byte) error {
	if len(args) == 0 {
		return nil
	}
	switch name := strings.ToUpper(string(args[0])); {
	case name == "SET" && len(args) >= 3:
		s.data[string(args[1])] = slices.Clone(args[2])
	case name == "DEL" && len(args) >= 2:
		for _, k := range args[1:] {
			delete(s.data, string(k))
		}
	case name == "APPEND" && len(args) == 3:
		k := string(args[1])
		s.data[k] = append(slices.Clone(s.data[k]), args[2]...)
	case name == "INCRBY" && len(args) == 3:
		by, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return fmt.Errorf("psynctest: INCRBY: %w", err)
		}
		n, _ := strconv.ParseInt(string(s.data[string(args[1])]), 10, 64)
		s.data[string(args[1])] = strconv.AppendInt(nil, n+by, 10)
	case name == "FLUSHALL":
		clear(s.data)
	case name == "SELECT":
	default:
		return fmt.Errorf("%w: %q with %d arguments", ErrUnknownCommand, args[0], len(args)-1)
	}
	return nil
}

// Apply implements psync.Applier.
func (s *Store) Apply(cmd psync.Command) error {
	if !s.batched {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	// PING and REPLCONF GETACK are not passed to Apply, so a gap is fine;
	// an overlap means a command applied twice.
	cut := len(cmd.Raw) == 0 && len(cmd.Args) > 0 && equalFold(cmd.Args[0], "DISCARD")
	if start := cmd.Offset - int64(len(cmd.Raw)); !cut && s.last >= 0 && start < s.last && s.err == nil {
		s.err = fmt.Errorf("psynctest: command %q starts at offset %d but the previous one ended at %d (applied twice)", cmd.Args[0], start, s.last)
	}
	s.last = cmd.Offset
	s.applied++
	switch {
	case len(cmd.Args) == 0:
		return nil
	case equalFold(cmd.Args[0], "MULTI"):
		s.inMulti, s.queue = true, nil
		return nil
	case equalFold(cmd.Args[0], "DISCARD"):
		s.inMulti, s.queue = false, nil
		if len(cmd.Raw) == 0 {
			// psync's DISCARD for a block cut by the link: it will come
			// again from MULTI, at cmd.Offset.
			s.last = cmd.Offset
		}
		return nil
	case equalFold(cmd.Args[0], "EXEC"):
		q := s.queue
		s.inMulti, s.queue = false, nil
		for _, args := range q {
			if err := s.apply(args); err != nil {
				return err
			}
		}
		return nil
	case s.inMulti:
		args := make([][]byte, len(cmd.Args))
		for i, a := range cmd.Args {
			args[i] = slices.Clone(a)
		}
		s.queue = append(s.queue, args)
		return nil
	}
	return s.apply(cmd.Args)
}

// BeginBatch implements psync.BatchApplier: the store's lock is held from
// here to EndBatch, and the batch's Apply calls, which must come from the
// goroutine that called BeginBatch (as psync makes them), run under it.
func (s *Store) BeginBatch() {
	s.mu.Lock()
	s.batched = true
}

// EndBatch implements psync.BatchApplier.
func (s *Store) EndBatch() {
	s.batched = false
	s.mu.Unlock()
}

func equalFold(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

// Err returns the first stream invariant violation the store saw, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Applied returns how many commands Apply received.
func (s *Store) Applied() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Loads returns how many snapshots were committed into the store.
func (s *Store) Loads() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// Get returns the value of key.
func (s *Store) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return string(v), ok
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// Digest returns an xxhash of the whole dataset, independent of insertion
// order: two stores with equal digests hold the same data.
func (s *Store) Digest() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return digest(s.data)
}

func digest(data map[string][]byte) uint64 {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := xxhash.New()
	var n [binary.MaxVarintLen64]byte
	for _, k := range keys {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		h.WriteString(k)
		v := data[k]
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write(v)
	}
	return h.Sum64()
}

// snapshot format: "PSTS" uvarint(count) {uvarint(len) key uvarint(len)
// value}... then the xxhash of everything before, 8 bytes big-endian.
const snapMagic = "PSTS"

// maxSnapString bounds one key or value in a snapshot the store loads.
const maxSnapString = 64 << 20

type storeSnapshot struct {
	data   map[string][]byte
	offset int64
	size   int64
}

func (s *storeSnapshot) Offset() int64 { return s.offset }
func (s *storeSnapshot) Len() int64    { return s.size }
func (s *storeSnapshot) Release()      { s.data = nil }

func (s *storeSnapshot) WriteTo(w io.Writer) (int64, error) {
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bw := bufio.NewWriterSize(w, 64<<10)
	h := xxhash.New()
	mw := io.MultiWriter(bw, h)
	var n int64
	var num [binary.MaxVarintLen64]byte
	put := func(b []byte) error {
		m, err := mw.Write(b)
		n += int64(m)
		return err
	}
	if err := put([]byte(snapMagic)); err != nil {
		return n, err
	}
	if err := put(num[:binary.PutUvarint(num[:], uint64(len(keys)))]); err != nil {
		return n, err
	}
	for _, k := range keys {
		v := s.data[k]
		for _, b := range [][]byte{num[:binary.PutUvarint(num[:], uint64(len(k)))], []byte(k)} {
			if err := put(b); err != nil {
				return n, err
			}
		}
		if err := put(num[:binary.PutUvarint(num[:], uint64(len(v)))]); err != nil {
			return n, err
		}
		if err := put(v); err != nil {
			return n, err
		}
	}
	sum := binary.BigEndian.AppendUint64(nil, h.Sum64())
	m, err := bw.Write(sum)
	n += int64(m)
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

func snapshotSize(data map[string][]byte) int64 {
	n := int64(len(snapMagic)) + int64(uvarintLen(uint64(len(data)))) + 8
	for k, v := range data {
		n += int64(uvarintLen(uint64(len(k)))+len(k)) + int64(uvarintLen(uint64(len(v)))+len(v))
	}
	return n
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

// Snapshot implements psync.Snapshotter: a shallow copy of the map (values
// are never mutated in place) labelled, under the lock writes take, with the
// larger of the master's offset and the offset of the last change (the
// Offset of the last command applied or snapshot loaded when the store
// follows a master). The store must be attached with SetMaster.
func (s *Store) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil {
		return nil, errors.New("psynctest: Store.Snapshot needs SetMaster")
	}
	data := make(map[string][]byte, len(s.data))
	for k, v := range s.data {
		data[k] = v
	}
	// The master's offset is never behind a write applied under this lock,
	// except on a chained replica between Apply and its backlog write, when
	// s.last is right; bytes past s.last in the backlog (PINGs, GETACKs) do
	// not change data, and labelling the snapshot after them keeps it
	// followed by the backlog however many PINGs came since the last write.
	off := max(s.last, s.master.Offset())
	return &storeSnapshot{data: data, offset: off, size: snapshotSize(data)}, nil
}

type loaded struct {
	s    *Store
	data map[string][]byte
	off  int64
}

func (l *loaded) Commit() {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	l.s.data = l.data
	l.s.last = l.off
	l.s.loads++
}

func (l *loaded) Discard() {}

// Load implements psync.Loader: it parses a snapshot written by a Store into
// a new map, verifying its checksum, and installs it only on Commit. Lengths
// are checked against a limit and strings grow as their bytes arrive, so a
// hostile snapshot cannot make it allocate much more than it sent.
func (s *Store) Load(ctx context.Context, r io.Reader, info psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	hr := &hashReader{br: bufio.NewReaderSize(r, 64<<10), h: xxhash.New()}
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(hr, magic); err != nil || string(magic) != snapMagic {
		if err == nil {
			err = errors.New("wrong magic")
		}
		return nil, fmt.Errorf("%w: no magic: %w", ErrBadSnapshot, err)
	}
	count, err := binary.ReadUvarint(hr)
	if err != nil {
		return nil, fmt.Errorf("%w: count: %w", ErrBadSnapshot, err)
	}
	data := make(map[string][]byte, min(count, 1024))
	var sb strings.Builder
	readString := func() (string, error) {
		n, err := binary.ReadUvarint(hr)
		if err != nil {
			return "", err
		}
		if n > maxSnapString {
			return "", fmt.Errorf("string of %d bytes over the limit", n)
		}
		sb.Reset()
		if m, err := io.CopyN(&sb, hr, int64(n)); err != nil {
			return "", fmt.Errorf("string of %d bytes cut at %d: %w", n, m, err)
		}
		return sb.String(), nil
	}
	for i := uint64(0); i < count; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, err := readString()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrBadSnapshot, i, err)
		}
		v, err := readString()
		if err != nil {
			return nil, fmt.Errorf("%w: value %d: %w", ErrBadSnapshot, i, err)
		}
		data[k] = []byte(v)
	}
	want := hr.h.Sum64()
	var sum [8]byte
	if _, err := io.ReadFull(hr.br, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: checksum: %w", ErrBadSnapshot, err)
	}
	if binary.BigEndian.Uint64(sum[:]) != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	return &loaded{s: s, data: data, off: info.Offset}, nil
}

// hashReader hashes exactly the bytes the parser consumes.
type hashReader struct {
	br *bufio.Reader
	h  *xxhash.Digest
}

func (r *hashReader) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	r.h.Write(p[:n])
	return n, err
}

func (r *hashReader) ReadByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err == nil {
		r.h.Write([]byte{b})
	}
	return b, err
}
