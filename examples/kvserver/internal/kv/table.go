package kv

import (
	"hash/maphash"
	"iter"
	"slices"
	"strings"
	"unsafe"
)

// keyTable maps a database's keys to their values. It replaces a Go map
// for one reason, the garbage collector: a map[string]*object of a million
// keys costs the collector about twice the marking work of this table (a
// map holds two pointers per slot in many small groups; here a slot is a
// hash and one pointer, in one array), and the collector's marking is what
// made a streaming replica fall megabytes behind its master on a busy
// machine. Per operation it is as fast as the map (BenchmarkKeyTableSet);
// the stored hash rejects other keys' slots without touching their key.
//
// It is open addressing with linear probing, at most 3/4 full, with
// deletion by backward shift (no tombstones). The key lives in the object
// (object.key), so a slot is 16 bytes. Growth allocates a table twice the
// size and then moves the old one's entries over incrementally, a few slots
// per insertion or deletion, so no single write pays for rehashing a
// million keys; until it is done, lookups search both tables, the old one
// marking what left it with a tombstone so its probe chains stay whole.
//
// The zero value is an empty table. It is not safe for concurrent use,
// and must not be changed during an iteration by all.
type keyTable struct {
	slots []ktSlot // power-of-two length, or nil
	n     int      // live entries in slots
	old   []ktSlot // the table being emptied into slots during a growth, or nil
	oldN  int      // live entries left in old
	next  int      // next index of old to move
}

// ktSlot is a table slot: empty when o is nil; in old, gone when o is
// ktGone.
type ktSlot struct {
	h uint64
	o *object
}

// ktGone marks a slot of the old table whose entry was moved or deleted.
var ktGone = new(object)

const (
	ktMinSize = 8  // slots of the first allocation
	ktMoves   = 16 // old slots moved per insertion or deletion during growth
)

// ktSeed seeds the key hash, which is therefore not predictable from
// outside the process: a client cannot choose keys that collide.
var ktSeed = maphash.MakeSeed()

func hashKey(k string) uint64 { return maphash.String(ktSeed, k) }

// bstr returns b as a string without a copy, for lookups only: the result
// must not be retained, as b's bytes may change.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// find returns the index in s of key's slot, or -1. s must have an empty
// slot, which the load limit guarantees.
func find(s []ktSlot, h uint64, key string) int {
	if len(s) == 0 {
		return -1
	}
	mask := len(s) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		sl := &s[i]
		if sl.o == nil {
			return -1
		}
		if sl.h == h && sl.o != ktGone && sl.o.key == key {
			return i
		}
	}
}

// len returns the number of keys.
func (t *keyTable) len() int { return t.n + t.oldN }

// get returns key's value, or nil.
func (t *keyTable) get(key string) *object {
	h := hashKey(key)
	if i := find(t.slots, h, key); i >= 0 {
		return t.slots[i].o
	}
	if i := find(t.old, h, key); i >= 0 {
		return t.old[i].o
	}
	return nil
}

// put stores o at key, replacing any value there, and sets o.key to the
// table's copy of the key: the one it holds if key is present, else
// o.key itself when it already equals key (it must not share memory that
// changes), else a fresh copy of key.
func (t *keyTable) put(key string, o *object) {
	h := hashKey(key)
	for _, s := range [2][]ktSlot{t.slots, t.old} {
		if i := find(s, h, key); i >= 0 {
			o.key = s[i].o.key
			s[i].o = o
			return
		}
	}
	if o.key != key {
		o.key = strings.Clone(key)
	}
	if (t.len()+1)*4 > len(t.slots)*3 {
		t.grow(t.len() + 1)
	}
	t.insert(h, o)
	t.move(ktMoves)
}

// insert adds an entry known to be absent to slots.
func (t *keyTable) insert(h uint64, o *object) {
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i].o != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = ktSlot{h, o}
	t.n++
}

// del removes key, reporting whether it was there.
func (t *keyTable) del(key string) bool {
	h := hashKey(key)
	if i := find(t.slots, h, key); i >= 0 {
		t.removeAt(i)
		t.move(ktMoves)
		return true
	}
	if i := find(t.old, h, key); i >= 0 {
		t.old[i].o = ktGone
		t.oldN--
		if t.oldN == 0 {
			t.old, t.next = nil, 0
		}
		return true
	}
	return false
}

// removeAt empties slot i of slots, shifting back the entries after it
// that probed past it.
func (t *keyTable) removeAt(i int) {
	s := t.slots
	mask := len(s) - 1
	for j := (i + 1) & mask; s[j].o != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its home slot lies
		// after i, between the hole and j.
		if (j-int(s[j].h))&mask >= (j-i)&mask {
			s[i] = s[j]
			i = j
		}
	}
	s[i] = ktSlot{}
	t.n--
}

// grow starts moving the table into one with room for n keys at most 3/4
// full, finishing any growth still under way first.
func (t *keyTable) grow(n int) {
	t.move(len(t.old))
	size := max(ktMinSize, len(t.slots))
	for n*4 > size*3 {
		size *= 2
	}
	t.old, t.oldN, t.next = t.slots, t.n, 0
	t.slots, t.n = make([]ktSlot, size), 0
	if t.oldN == 0 {
		t.old = nil
	}
}

// move moves up to steps slots' worth of the old table into slots.
func (t *keyTable) move(steps int) {
	for ; steps > 0 && t.old != nil; steps-- {
		sl := &t.old[t.next]
		if sl.o != nil && sl.o != ktGone {
			t.insert(sl.h, sl.o)
			sl.o = ktGone
			t.oldN--
		}
		t.next++
		if t.next == len(t.old) || t.oldN == 0 {
			t.old, t.next = nil, 0
		}
	}
}

// reserve makes room for n keys in an empty table.
func (t *keyTable) reserve(n int) {
	if t.len() == 0 && n*4 > len(t.slots)*3 {
		t.grow(n)
	}
}

// all yields every key and its value, in no particular order.
func (t *keyTable) all() iter.Seq2[string, *object] {
	return func(yield func(string, *object) bool) {
		for _, s := range [2][]ktSlot{t.slots, t.old} {
			for i := range s {
				if o := s[i].o; o != nil && o != ktGone && !yield(o.key, o) {
					return
				}
			}
		}
	}
}

// clone returns an independent copy of the table sharing its objects.
func (t *keyTable) clone() keyTable {
	c := *t
	c.slots, c.old = slices.Clone(t.slots), slices.Clone(t.old)
	return c
}

// PrefetchWindow is how many commands Prefetch looks ahead at most.
const PrefetchWindow = 32

// Prefetch loads into the CPU cache what applying cmds (argument lists)
// will read first: the table slot of each command's first key (argv[1]) in
// database db, then the value there, its key and its string bytes. Applied
// one command at a time, each of these is a cache miss that the command
// waits for, and they are most of a replica's time for a SET into a large
// keyspace; touched here, key after key, the misses of many keys overlap.
// It changes nothing, and a guess that turns out wrong (a command without a
// key at argv[1], a SELECT in between) only costs the touch. It looks at
// the first PrefetchWindow commands. The caller holds the store lock, for
// instance through BeginApply.
func (s *Store) Prefetch(db int, cmds [][][]byte) {
	if db < 0 || db >= len(s.dbs) {
		return
	}
	t := &s.dbs[db].keys
	if len(t.slots) == 0 {
		return
	}
	cmds = cmds[:min(len(cmds), PrefetchWindow)]
	mask := len(t.slots) - 1
	var objs [PrefetchWindow]*object
	for i, argv := range cmds {
		if len(argv) > 1 {
			objs[i] = t.slots[int(hashKey(bstr(argv[1])))&mask].o
		}
	}
	var sink int
	for _, o := range objs[:len(cmds)] {
		if o != nil {
			sink += len(o.key) + len(o.str)
		}
	}
	for _, o := range objs[:len(cmds)] {
		if o != nil {
			if len(o.key) > 0 {
				sink += int(o.key[0])
			}
			if len(o.str) > 0 {
				sink += int(o.str[0])
			}
		}
	}
	prefetchSink.Store(uint32(sink))
}
