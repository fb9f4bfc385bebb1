package kv

import "strconv"

// This file holds key lookup with lazy expiry, the copy-on-write rule and
// the active expire cycle.

// expired reports whether key has an expiry time that has passed. A key
// expires once the clock is past its time, as in Redis.
func (x *execCtx) expired(key []byte) bool {
	at, ok := x.db.expires[string(key)]
	return ok && at < x.nowMs()
}

// lookup returns the value at key, or nil. A key whose time has passed is
// deleted (and DEL propagated) on a master, reported missing on a read-only
// replica, and still visible to commands from the master's stream.
func (x *execCtx) lookup(key []byte) *object {
	o := x.db.keys.get(bstr(key))
	if o == nil || x.master || !x.expired(key) {
		return o
	}
	if !x.s.readOnly {
		x.s.expireKey(x.dbIndex, string(key))
	}
	return nil
}

// lookupType returns the value at key, or nil when missing. It reports
// false, having appended WRONGTYPE, when the key holds another type.
func (x *execCtx) lookupType(key []byte, k kind) (*object, bool) {
	o := x.lookup(key)
	if o != nil && o.kind != k {
		x.err(errWrongType)
		return nil, false
	}
	return o, true
}

// mutable returns o ready to be changed in place: if a live snapshot may
// share it, it is cloned and the clone replaces it in the database.
func (x *execCtx) mutable(key []byte, o *object) *object {
	s := x.s
	if s.snaps == 0 || o.epoch >= s.snapEpoch {
		return o
	}
	c := o.clone(s.epoch)
	x.db.keys.put(bstr(key), c)
	return c
}

// newObject returns an empty value of kind k stamped with the current epoch.
func (x *execCtx) newObject(k kind) *object {
	o := &object{kind: k, epoch: x.s.epoch}
	switch k {
	case kindList:
		o.agg = &deque{}
	case kindSet:
		o.agg = make(map[string]struct{})
	case kindHash:
		o.agg = newHash()
	case kindZSet:
		o.agg = newZSet()
	}
	return o
}

// add stores a new value at key (which must not exist).
func (x *execCtx) add(key []byte, o *object) {
	x.db.keys.put(bstr(key), o)
}

// setString stores a string value at key, replacing any value; the expiry
// is removed unless keepTTL.
func (x *execCtx) setString(key, val []byte, keepTTL bool) {
	x.setStringOver(key, x.db.keys.get(bstr(key)), val, keepTTL)
}

// setStringOver is setString for a caller that already looked key up: old
// is its current value or nil. A string value that no live snapshot can see
// is changed in place, reusing its bytes when the new value fits, which
// spares the allocations and the table insertion of a new object: the
// common SET of an existing key, on a master and on a replica applying
// the stream.
func (x *execCtx) setStringOver(key []byte, old *object, val []byte, keepTTL bool) {
	s := x.s
	if old != nil && old.kind == kindString && (s.snaps == 0 || old.epoch >= s.snapEpoch) {
		if old.ownStr && len(val) <= cap(old.str) && cap(old.str) <= 2*len(val)+64 {
			old.str = append(old.str[:0], val...)
		} else {
			old.str, old.ownStr = cloneBytes(val), true
		}
	} else if old == nil && len(key) > 0 {
		x.db.keys.put(bstr(key), newStringObject(key, val, s.epoch))
	} else {
		x.db.keys.put(bstr(key), &object{kind: kindString, epoch: s.epoch, ownStr: true, str: cloneBytes(val)})
	}
	if !keepTTL && len(x.db.expires) > 0 {
		delete(x.db.expires, string(key))
	}
}

// del removes key and its expiry, reporting whether it existed.
func (x *execCtx) del(key []byte) bool {
	return x.db.del(bstr(key))
}

func (d *db) del(key string) bool {
	if !d.keys.del(key) {
		return false
	}
	delete(d.expires, key)
	return true
}

// delIfEmpty removes key when its aggregate value o became empty.
func (x *execCtx) delIfEmpty(key []byte, o *object) {
	if o.size() == 0 {
		x.del(key)
	}
}

// expireKey deletes an expired key on a master and propagates DEL at once,
// outside any transaction, as Redis 7.0 does.
func (s *Store) expireKey(dbIndex int, key string) {
	s.dbs[dbIndex].del(key)
	s.propagateNow(dbIndex, []byte("DEL"), []byte(key))
}

// ExpireCycle deletes keys whose time has passed, propagating a DEL for
// each, as Redis's active expire cycle does; the host calls it about ten
// times a second. Each call samples a bounded number of keys with an
// expiry per database, so a call stays short; it returns how many keys it
// deleted. On a read-only store it does nothing: replicas wait for the
// master's DEL.
func (s *Store) ExpireCycle() int {
	const perDB = 20
	s.mu.Lock()
	defer s.unlock()
	if s.readOnly {
		return 0
	}
	now := s.now().UnixMilli()
	deleted := 0
	for range len(s.dbs) {
		i := s.expireDB
		s.expireDB = (s.expireDB + 1) % len(s.dbs)
		d := s.dbs[i]
		// Sample repeatedly while more than a quarter of the sample expired,
		// bounded so a call never stalls the server.
		for round := 0; round < 16 && len(d.expires) > 0; round++ {
			checked, hit := 0, 0
			for k, at := range d.expires {
				if checked == perDB {
					break
				}
				checked++
				if at < now {
					s.expireKey(i, k)
					hit++
				}
			}
			deleted += hit
			if hit*4 <= checked {
				break
			}
		}
	}
	return deleted
}

// ttlMillis returns the remaining time to live of key in ms, -1 for no
// expiry, -2 for no key.
func (x *execCtx) ttlMillis(key []byte) int64 {
	if x.lookup(key) == nil {
		return -2
	}
	at, ok := x.db.expires[string(key)]
	if !ok {
		return -1
	}
	return max(at-x.nowMs(), 0)
}

func itob(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
