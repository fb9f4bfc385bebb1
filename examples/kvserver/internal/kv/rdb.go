package kv

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/psyncio/psync/rdb"
)

// WriteRDB writes the snapshot to w as an RDB file (version 10, what Redis
// 7.0 writes) with the given AUX fields (written in key order; a full
// resync sends repl-stream-db, repl-id and repl-offset), and returns the
// number of bytes written. It runs without the store lock, alongside new
// writes, and does not close w. Call it at most once at a time per
// Snapshot, before Release.
func (sn *Snapshot) WriteRDB(w io.Writer, aux map[string]string) (int64, error) {
	if sn.dbs == nil {
		return 0, errors.New("kv: WriteRDB on a released snapshot")
	}
	cw := &countingWriter{w: w}
	fields := make([]rdb.AuxField, 0, len(aux))
	for k, v := range aux {
		fields = append(fields, rdb.AuxField{Key: k, Value: v})
	}
	slices.SortFunc(fields, func(a, b rdb.AuxField) int { return compareStrings(a.Key, b.Key) })
	wr, err := rdb.NewWriter(cw, rdb.WriterOptions{Aux: fields})
	if err != nil {
		return cw.n, err
	}
	if err := sn.WriteEntries(wr); err != nil {
		return cw.n, err
	}
	err = wr.Close()
	return cw.n, err
}

// fillEntry describes object o at key k as an rdb.Entry, reusing e's slices.
func fillEntry(e *rdb.Entry, dbIndex int, k string, o *object, expires map[string]int64) {
	*e = rdb.Entry{
		// The writer only reads Key: the string's bytes are not copied.
		DB: dbIndex, Key: unsafe.Slice(unsafe.StringData(k), len(k)), Kind: rdbKind(o.kind), Idle: -1, Freq: -1,
		List: e.List[:0], Set: e.Set[:0], Hash: e.Hash[:0], ZSet: e.ZSet[:0],
	}
	if at, ok := expires[k]; ok {
		e.ExpireAt = max(at, 1) // 0 would mean no expiry
	}
	switch o.kind {
	case kindString:
		e.String = o.str
	case kindList:
		for j := range o.list().len() {
			e.List = append(e.List, o.list().at(j))
		}
	case kindSet:
		for m := range o.set() {
			e.Set = append(e.Set, []byte(m))
		}
	case kindHash:
		o.hash().each(func(f string, v []byte) {
			e.Hash = append(e.Hash, rdb.HashField{Field: []byte(f), Value: v})
		})
	case kindZSet:
		for _, m := range o.zset().sorted {
			e.ZSet = append(e.ZSet, rdb.ZMember{Member: []byte(m.member), Score: m.score})
		}
	}
}

func rdbKind(k kind) rdb.Kind {
	switch k {
	case kindList:
		return rdb.KindList
	case kindSet:
		return rdb.KindSet
	case kindZSet:
		return rdb.KindZSet
	case kindHash:
		return rdb.KindHash
	}
	return rdb.KindString
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Dataset is a complete set of databases built apart from any Store, by
// LoadRDB, ready to be installed with Store.Swap.
type Dataset struct {
	dbs   []*db
	aux   map[string]string
	arena loadArena // allocates what Add copies

	// Add's pipeline (see Add): keys copied but not inserted yet, the
	// batch being inserted (inflight is closed once it is), and a spare
	// batch buffer.
	pending  []loadedKey
	spare    []loadedKey
	inflight chan struct{}
}

// Aux returns the AUX fields of the RDB the dataset was loaded from, such
// as repl-stream-db, repl-id and repl-offset.
func (d *Dataset) Aux() map[string]string { return d.aux }

// DBSize returns the number of keys in database i.
func (d *Dataset) DBSize(i int) int {
	d.sync()
	if i < 0 || i >= len(d.dbs) {
		return 0
	}
	return d.dbs[i].keys.len()
}

// LoadOptions configures LoadRDB. The zero value is usable.
type LoadOptions struct {
	// Databases is the number of databases of the dataset; an RDB key in a
	// higher database is an error. Default: 16.
	Databases int
	// Reader is passed to rdb.NewReader. Streams and module values, which
	// the engine cannot hold, fail the load unless SkipUnsupported is set.
	Reader rdb.ReaderOptions
}

// LoadRDB reads a whole RDB stream into a new Dataset, leaving any live
// Store untouched, so a replica keeps serving its old data until the load
// succeeds and it calls Swap. Keys are loaded with their expiry times even
// if those have passed, as a Redis replica does; the master's DELs (or the
// active expire cycle, once a master) remove them.
func LoadRDB(r io.Reader, opt LoadOptions) (*Dataset, error) {
	d := NewDataset(opt.Databases)
	ropt := opt.Reader
	userHint := ropt.OnResizeDB
	ropt.OnResizeDB = func(db int, keys, expires uint64) {
		if userHint != nil {
			userHint(db, keys, expires)
		}
		d.Reserve(db, keys, expires)
	}
	rd := rdb.NewReader(r, ropt)
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := d.Add(e); err != nil {
			return nil, err
		}
	}
	d.sync()
	d.aux = rd.Aux()
	return d, nil
}

// objectFromEntry copies an rdb.Entry (whose memory the Reader reuses)
// into a new object, allocated from a when it is not nil.
func objectFromEntry(e *rdb.Entry, a *loadArena) (*object, error) {
	o := a.object()
	switch e.Kind {
	case rdb.KindString:
		o.kind, o.str, o.ownStr = kindString, a.bytes(e.String), true
	case rdb.KindList:
		o.kind, o.agg = kindList, &deque{}
		for _, v := range e.List {
			o.list().pushBack(a.bytes(v))
		}
	case rdb.KindSet:
		o.kind, o.agg = kindSet, make(map[string]struct{}, len(e.Set))
		for _, m := range e.Set {
			o.set()[a.string(m)] = struct{}{}
		}
	case rdb.KindHash:
		o.kind, o.agg = kindHash, newHashSize(len(e.Hash))
		for _, f := range e.Hash {
			o.hash().set(a.string(f.Field), a.bytes(f.Value))
		}
	case rdb.KindZSet:
		o.kind, o.agg = kindZSet, newZSet()
		for _, m := range e.ZSet {
			o.zset().scores[string(m.Member)] = m.Score
		}
		o.zset().sorted = make([]zmember, 0, len(o.zset().scores))
		for m, sc := range o.zset().scores {
			o.zset().sorted = append(o.zset().sorted, zmember{member: m, score: sc})
		}
		slices.SortFunc(o.zset().sorted, func(a, b zmember) int {
			switch {
			case zless(a, b.score, b.member):
				return -1
			case zless(b, a.score, a.member):
				return 1
			}
			return 0
		})
	default:
		return nil, fmt.Errorf("kv: RDB key %q has unsupported kind %v", e.Key, e.Kind)
	}
	if o.size() == 0 {
		return nil, fmt.Errorf("kv: RDB key %q holds an empty %v", e.Key, e.Kind)
	}
	return o, nil
}

// Swap replaces the whole dataset with d, atomically for commands: the
// old data stay in place until this call. d must not be used afterwards.
// Live snapshots keep their own view of the old data. If d has fewer
// databases than the store, the others become empty; databases beyond the
// store's count must be empty.
func (s *Store) Swap(d *Dataset) { s.SwapAtomically(d, nil) }

// SwapAtomically is Swap followed by atomically (when not nil) in the same
// hold of the store lock: a replica records there the offset of the
// snapshot it installs (see ApplyAtomically). atomically must not call
// Store methods.
func (s *Store) SwapAtomically(d *Dataset, atomically func()) {
	d.sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if atomically != nil {
		defer atomically()
	}
	for i := range s.dbs {
		if i < len(d.dbs) {
			s.dbs[i] = d.dbs[i]
		} else {
			s.dbs[i] = newDB()
		}
	}
	d.dbs = nil
}

// Builder loads a new dataset key by key and installs it in its Store on
// Commit. It is an rdb.Builder, for an rdb.Loader on a replica:
//
//	loader := &rdb.Loader{Begin: func(rdb.LoadInfo) (rdb.Builder, error) {
//		return st.NewBuilder(), nil
//	}}
type Builder struct {
	s *Store
	d *Dataset
}

var (
	_ rdb.Builder    = (*Builder)(nil)
	_ rdb.SizeHinter = (*Builder)(nil)
)

// NewBuilder returns a Builder for a dataset with as many databases as s.
func (s *Store) NewBuilder() *Builder {
	return &Builder{s: s, d: NewDataset(len(s.dbs))}
}

// Add copies one key into the new dataset.
func (b *Builder) Add(e *rdb.Entry) error { return b.d.Add(e) }

// SizeHint presizes a database from the RDB's RESIZEDB hint
// (rdb.SizeHinter; see Dataset.Reserve).
func (b *Builder) SizeHint(db int, keys, expires uint64) { b.d.Reserve(db, keys, expires) }

// Commit replaces the store's dataset with the loaded one (Store.Swap).
func (b *Builder) Commit() { b.s.Swap(b.d) }

// Discard drops the loaded dataset; the store is untouched.
func (b *Builder) Discard() { b.d = nil }
