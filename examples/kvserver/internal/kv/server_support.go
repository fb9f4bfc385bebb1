package kv

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/psyncio/psync/rdb"
)

// This file holds the few entry points the kvserver host needs to plug the
// engine into the rdb package's psync adapter (rdb.Snapshot, rdb.Loader),
// which works key by key on an *rdb.Writer and rdb.Entry values.

// WriteEntries writes the snapshot's databases to w: SelectDB before each
// non-empty database, then one WriteEntry per key. It does not write the
// header, AUX fields or EOF: the caller owns w. Like WriteRDB it runs
// without the store lock, alongside new writes, before Release.
func (sn *Snapshot) WriteEntries(w *rdb.Writer) error {
	if sn.dbs == nil {
		return errors.New("kv: WriteEntries on a released snapshot")
	}
	var e rdb.Entry
	var batch [prefetchBatch]keyObject
	for i, d := range sn.dbs {
		if d.keys.len() == 0 {
			continue
		}
		if err := w.SelectDB(i, uint64(d.keys.len()), uint64(len(d.expires))); err != nil {
			return err
		}
		n := 0
		write := func() error {
			prefetch(batch[:n])
			for _, ko := range batch[:n] {
				fillEntry(&e, i, ko.k, ko.o, d.expires)
				if err := w.WriteEntry(&e); err != nil {
					return err
				}
			}
			clear(batch[:n])
			n = 0
			return nil
		}
		for k, o := range d.keys.all() {
			batch[n] = keyObject{k, o}
			if n++; n == len(batch) {
				if err := write(); err != nil {
					return err
				}
			}
		}
		if err := write(); err != nil {
			return err
		}
	}
	return nil
}

// prefetchBatch is how many keys WriteEntries reads ahead of encoding.
const prefetchBatch = 32

type keyObject struct {
	k string
	o *object
}

// prefetch touches the memory of each key, object and string value of kos,
// so that their cache misses overlap instead of each stalling the encoder
// in turn: the table hands out keys in hash order, each object and value
// is somewhere else in memory, and without this the snapshot writer spends
// most of its time waiting for memory.
func prefetch(kos []keyObject) {
	var sink byte
	for _, ko := range kos {
		o := ko.o
		sink += byte(o.kind)
		if len(ko.k) > 0 {
			sink += ko.k[len(ko.k)-1]
		}
		if len(o.str) > 0 {
			sink += o.str[0] + o.str[len(o.str)-1]
		}
	}
	prefetchSink.Store(uint32(sink))
}

// prefetchSink receives a value computed from the prefetched memory, so the
// compiler cannot drop the loads. It is atomic because stores in the same
// process (several replicas, several snapshots) prefetch at the same time.
var prefetchSink atomic.Uint32

// NewDataset returns an empty Dataset of the given number of databases
// (16 when n <= 0), to be filled with Add and installed with Store.Swap.
func NewDataset(n int) *Dataset {
	if n <= 0 {
		n = 16
	}
	d := &Dataset{dbs: make([]*db, n)}
	for i := range d.dbs {
		d.dbs[i] = newDB()
	}
	return d
}

// Reserve makes room for keys keys, expires of them with an expiry, in
// database db, before they are added: an RDB's RESIZEDB hint. Growing a
// table of a million keys one insertion at a time moves them about twice
// over, so a load that knows its size in advance runs much faster. It
// does nothing for a database that already holds keys or an invalid db.
// Hints are capped (4Mi keys), so a hostile file cannot make it reserve
// much memory; a larger database still loads, growing past the cap.
func (d *Dataset) Reserve(db int, keys, expires uint64) {
	const maxHint = 1 << 22
	d.sync()
	if db < 0 || db >= len(d.dbs) || d.dbs[db].keys.len() > 0 {
		return
	}
	t := d.dbs[db]
	t.keys.reserve(int(min(keys, maxHint)))
	if len(t.expires) == 0 && expires > 0 {
		t.expires = make(map[string]int64, min(expires, maxHint))
	}
}

// Add copies one RDB entry into the dataset, as LoadRDB does for each key:
// e may be reused by the caller afterwards. Keys keep their expiry even if
// it has passed.
//
// The copy is made before Add returns; the insertion into the database's
// map happens on another goroutine, a batch of keys at a time, while the
// caller decodes the next ones (inserting a million keys into a map is
// the larger half of a load, bound by memory latency). Every other method
// waits for the insertions first; a Dataset that is dropped mid-load
// leaves at most one batch goroutine behind, which ends by itself.
func (d *Dataset) Add(e *rdb.Entry) error {
	if e.DB < 0 || e.DB >= len(d.dbs) {
		return fmt.Errorf("kv: RDB key %q in database %d, only %d databases", e.Key, e.DB, len(d.dbs))
	}
	o, err := objectFromEntry(e, &d.arena)
	if err != nil {
		return err
	}
	d.pending = append(d.pending, loadedKey{db: e.DB, key: d.arena.string(e.Key), o: o, expireAt: e.ExpireAt})
	if len(d.pending) == insertBatch {
		d.wait()
		batch, done := d.pending, make(chan struct{})
		d.pending, d.spare, d.inflight = d.spare[:0], batch, done
		go func() {
			d.insert(batch)
			close(done)
		}()
	}
	return nil
}

// insertBatch is how many keys Add hands to an insertion goroutine at once.
const insertBatch = 1024

// loadedKey is a key copied by Add, waiting to be inserted.
type loadedKey struct {
	db       int
	key      string
	o        *object
	expireAt int64
}

// insert adds keys to their databases, in order.
func (d *Dataset) insert(keys []loadedKey) {
	for i := range keys {
		k := &keys[i]
		t := d.dbs[k.db]
		k.o.key = k.key
		t.keys.put(k.key, k.o)
		if k.expireAt != 0 {
			t.expires[k.key] = k.expireAt
		} else if len(t.expires) > 0 {
			delete(t.expires, k.key)
		}
		*k = loadedKey{}
	}
}

// wait waits for the batch being inserted, if any.
func (d *Dataset) wait() {
	if d.inflight != nil {
		<-d.inflight
		d.inflight = nil
	}
}

// sync completes every insertion: the databases then hold every key added.
func (d *Dataset) sync() {
	d.wait()
	d.insert(d.pending)
	d.pending = d.pending[:0]
}
