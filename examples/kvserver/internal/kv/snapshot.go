package kv

import "maps"

// Snapshot is a point-in-time view of the whole dataset, for a full
// resynchronisation. Taking one copies only the per-database key tables and
// expiry maps; the values are shared with the live store, which clones a
// value before its first change after the snapshot (copy on write). A
// Snapshot can therefore be read, for instance by WriteRDB, while commands
// keep running. Release must be called once it is no longer used, or every
// value changed afterwards keeps being copied.
type Snapshot struct {
	s        *Store
	dbs      []*db
	released bool // guarded by s.mu
}

// Snapshot captures the dataset. If atomically is non-nil it runs in the
// same lock hold, right after the capture: the host reads its replication
// offset there, so that the snapshot and the offset name exactly the same
// point of the write stream. atomically must not call Store methods.
//
// The cost is O(number of keys) pointer copies, not a copy of the values.
func (s *Store) Snapshot(atomically func()) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := &Snapshot{s: s, dbs: make([]*db, len(s.dbs))}
	for i, d := range s.dbs {
		sn.dbs[i] = &db{keys: d.keys.clone(), expires: maps.Clone(d.expires)}
	}
	// Every existing object now has an epoch below snapEpoch and is frozen;
	// objects created or cloned from here on belong to the live store only.
	s.epoch++
	s.snapEpoch = s.epoch
	s.snaps++
	if atomically != nil {
		atomically()
	}
	return sn
}

// Release ends the snapshot's life. Once every snapshot is released the
// store stops copying values on write. Call it after WriteRDB returns;
// calling it twice is harmless.
func (sn *Snapshot) Release() {
	s := sn.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.released {
		return
	}
	sn.released = true
	sn.dbs = nil
	s.snaps--
	if s.snaps == 0 {
		s.snapEpoch = 0
	}
}

// Digest returns the Digest the store had when the snapshot was taken.
func (sn *Snapshot) Digest() uint64 { return digestDBs(sn.dbs) }

// DBSize returns the number of keys database i had at the snapshot.
func (sn *Snapshot) DBSize(i int) int {
	if i < 0 || i >= len(sn.dbs) {
		return 0
	}
	return sn.dbs[i].keys.len()
}
