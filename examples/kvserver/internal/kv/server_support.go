package kv

import (
	"errors"
	"fmt"

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
	for i, d := range sn.dbs {
		if len(d.keys) == 0 {
			continue
		}
		if err := w.SelectDB(i, uint64(len(d.keys)), uint64(len(d.expires))); err != nil {
			return err
		}
		for k, o := range d.keys {
			fillEntry(&e, i, k, o, d.expires)
			if err := w.WriteEntry(&e); err != nil {
				return err
			}
		}
	}
	return nil
}

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

// Add copies one RDB entry into the dataset, as LoadRDB does for each key:
// e may be reused by the caller afterwards. Keys keep their expiry even if
// it has passed.
func (d *Dataset) Add(e *rdb.Entry) error {
	if e.DB < 0 || e.DB >= len(d.dbs) {
		return fmt.Errorf("kv: RDB key %q in database %d, only %d databases", e.Key, e.DB, len(d.dbs))
	}
	o, err := objectFromEntry(e)
	if err != nil {
		return err
	}
	t := d.dbs[e.DB]
	k := string(e.Key)
	t.keys[k] = o
	if e.ExpireAt != 0 {
		t.expires[k] = e.ExpireAt
	} else {
		delete(t.expires, k)
	}
	return nil
}
