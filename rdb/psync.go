package rdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/psyncio/psync"
)

// This file adapts the codec to psync's storage contracts, so a host that
// can list its keys as Entries, and build a dataset from them, replicates
// in RDB: what a real Redis replica loads and a real Redis master sends.
//
//	master: psync.Snapshotter -> NewSnapshot(SnapshotConfig{Write: ...})
//	replica: psync.Loader     -> &Loader{Begin: ...}

// RedisVersion is the version the AUX field redis-ver announces in the
// snapshots this package writes: the Redis release whose RDB format (version
// 10) the Writer produces.
const RedisVersion = "7.0.15"

// SnapshotConfig describes a captured dataset for NewSnapshot.
type SnapshotConfig struct {
	// Offset is the master offset of the last write the dataset holds
	// (psync.Master.Offset read under the host's write lock). It is written
	// as the AUX field repl-offset.
	Offset int64
	// ReplID, when set, is written as the AUX field repl-id.
	ReplID psync.ReplID
	// StreamDB is written as the AUX field repl-stream-db: the database the
	// replication stream had selected at the capture (the db of the last
	// SELECT the host fed), so a node loading the file knows which database
	// the commands that follow apply to until the next SELECT. Negative
	// values are written as 0, as Redis does when it has selected none.
	StreamDB int
	// Ctime is written as the AUX field ctime (unix seconds). Zero means the
	// time WriteTo starts.
	Ctime time.Time
	// Aux fields are written after the standard ones (redis-ver,
	// redis-bits, ctime, used-mem, repl-stream-db, repl-id, repl-offset,
	// aof-base).
	Aux []AuxField
	// Writer configures the encoding; its Aux field is ignored.
	Writer WriterOptions

	// Write writes the captured keys: w.SelectDB before each database, then
	// w.WriteEntry for each key. It must not call w.Close. It runs once, in
	// WriteTo, concurrently with the host's new writes, so it must read the
	// captured (copy-on-write) view, never the live dataset. Required.
	Write func(w *Writer) error
	// Release frees the captured view. It is called exactly once, by
	// Snapshot.Release. Optional.
	Release func()
}

// Snapshot is a psync.Snapshot that writes a captured dataset as an RDB
// file with the AUX fields a Redis replica expects after +FULLRESYNC. Build
// one with NewSnapshot from the host's psync.Snapshotter: capturing must be
// cheap and done under the host's write lock, the RDB encoding happens later
// in WriteTo.
type Snapshot struct {
	cfg  SnapshotConfig
	once sync.Once
}

var _ psync.Snapshot = (*Snapshot)(nil)

// NewSnapshot returns a Snapshot of the dataset cfg describes. cfg.Write is
// required.
func NewSnapshot(cfg SnapshotConfig) *Snapshot {
	return &Snapshot{cfg: cfg}
}

// Offset returns the master offset of the snapshot (psync.Snapshot).
func (s *Snapshot) Offset() int64 { return s.cfg.Offset }

// AuxFields returns the AUX fields WriteTo writes, in order, with ctime as
// of now when the config leaves it zero.
func (s *Snapshot) AuxFields() []AuxField {
	c := s.cfg
	ctime := c.Ctime
	if ctime.IsZero() {
		ctime = time.Now()
	}
	db := max(c.StreamDB, 0)
	aux := []AuxField{
		{"redis-ver", RedisVersion},
		{"redis-bits", "64"},
		{"ctime", strconv.FormatInt(ctime.Unix(), 10)},
		{"used-mem", "0"},
		{"repl-stream-db", strconv.Itoa(db)},
	}
	if c.ReplID != "" {
		aux = append(aux, AuxField{"repl-id", string(c.ReplID)})
	}
	aux = append(aux, AuxField{"repl-offset", strconv.FormatInt(c.Offset, 10)}, AuxField{"aof-base", "0"})
	return append(aux, c.Aux...)
}

// WriteTo writes the whole RDB (header, AUX fields, the host's keys, EOF
// and checksum) to w and returns the number of bytes written
// (psync.Snapshot). It does not close w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	if s.cfg.Write == nil {
		return 0, errors.New("rdb: SnapshotConfig.Write is nil")
	}
	cw := &countWriter{w: w}
	opt := s.cfg.Writer
	opt.Aux = s.AuxFields()
	wr, err := NewWriter(cw, opt)
	if err != nil {
		return cw.n, err
	}
	if err := s.cfg.Write(wr); err != nil {
		return cw.n, err
	}
	err = wr.Close()
	return cw.n, err
}

// Release calls the host's release function once (psync.Snapshot).
func (s *Snapshot) Release() {
	s.once.Do(func() {
		if s.cfg.Release != nil {
			s.cfg.Release()
		}
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// LoadInfo describes an RDB snapshot a replica is starting to load.
type LoadInfo struct {
	// Sync is what psync knows of the transfer: the position the dataset
	// will be at once loaded, and the size.
	Sync psync.SnapshotInfo
	// Version is the RDB version of the file.
	Version int
	// Aux holds the file's AUX fields (redis-ver, repl-stream-db, ...). The
	// map is the Builder's to keep.
	Aux map[string]string
	// StreamDB is the AUX field repl-stream-db, or 0 when absent or
	// malformed: the database the master's stream has selected right after
	// the snapshot, until its next SELECT.
	StreamDB int
}

// Builder builds a new dataset from the keys of one RDB snapshot, apart
// from the live one. Add is called for each key in file order; then exactly
// one of Commit (the whole snapshot arrived and checked out) or Discard
// (anything failed) is called. Calls are never concurrent.
type Builder interface {
	// Add adds one key. e and every slice it holds are only valid during
	// the call (see Entry.Clone). An error aborts the load.
	Add(e *Entry) error
	// Commit atomically replaces the host's live dataset with the new one.
	Commit()
	// Discard drops the new dataset.
	Discard()
}

// SizeHinter is an optional interface of a Builder: Loader passes it the
// file's RESIZEDB hints (see ReaderOptions.OnResizeDB), each before the keys
// of its database, so that it can presize its tables. The hints are claims
// of the file: cap what they make you allocate.
type SizeHinter interface {
	SizeHint(db int, keys, expires uint64)
}

// Loader is a psync.Loader that decodes an RDB snapshot key by key into a
// Builder the host provides. The live dataset is untouched until psync
// commits the load, so a failed full resync leaves it intact.
type Loader struct {
	// Begin starts a new dataset once the RDB header and AUX fields have been
	// read. An error aborts the load (psync reports ErrLoad). Required.
	Begin func(info LoadInfo) (Builder, error)
	// Options configure the Reader. With SkipUnsupported, streams and module
	// values are skipped (and reported to OnSkip); without it, such a key
	// fails the load.
	Options ReaderOptions
}

var _ psync.Loader = (*Loader)(nil)

// Load reads the whole RDB from r into a new Builder (psync.Loader).
func (l *Loader) Load(ctx context.Context, r io.Reader, info psync.SnapshotInfo) (psync.LoadedSnapshot, error) {
	if l.Begin == nil {
		return nil, errors.New("rdb: Loader.Begin is nil")
	}
	// RESIZEDB hints go to the Builder when it is a SizeHinter; those read
	// before Begin (the first database's, found by the first Next) are
	// held until it exists.
	type hint struct {
		db            int
		keys, expires uint64
	}
	var (
		b    Builder
		held []hint
	)
	opt := l.Options
	userHint := opt.OnResizeDB
	opt.OnResizeDB = func(db int, keys, expires uint64) {
		if userHint != nil {
			userHint(db, keys, expires)
		}
		if b == nil {
			held = append(held, hint{db, keys, expires})
		} else if h, ok := b.(SizeHinter); ok {
			h.SizeHint(db, keys, expires)
		}
	}
	rd := NewReader(r, opt)
	// The AUX fields precede the first key, so they are known once the
	// first Next returns.
	e, err := rd.Next()
	if err != nil && err != io.EOF {
		return nil, err
	}
	first := e
	done := err == io.EOF
	aux := make(map[string]string, len(rd.Aux()))
	for k, v := range rd.Aux() {
		aux[k] = v
	}
	li := LoadInfo{Sync: info, Version: rd.Version(), Aux: aux}
	if v, ok := aux["repl-stream-db"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			li.StreamDB = n
		}
	}
	nb, err := l.Begin(li)
	if err != nil {
		return nil, err
	}
	b = nb
	if h, ok := b.(SizeHinter); ok {
		for _, x := range held {
			h.SizeHint(x.db, x.keys, x.expires)
		}
	}
	if first != nil {
		if err := b.Add(first); err != nil {
			b.Discard()
			return nil, err
		}
	}
	for n := 1; !done; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			b.Discard()
			return nil, context.Cause(ctx)
		}
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Discard()
			return nil, err
		}
		if err := b.Add(e); err != nil {
			b.Discard()
			return nil, fmt.Errorf("rdb: key %q in db %d: %w", e.Key, e.DB, err)
		}
	}
	return loaded{b}, nil
}

// loaded is the psync.LoadedSnapshot of a Builder.
type loaded struct{ b Builder }

func (l loaded) Commit()  { l.b.Commit() }
func (l loaded) Discard() { l.b.Discard() }
