package kv

import (
	"maps"
	"slices"
	"sort"
	"unsafe"
)

// kind is the type of a stored value, as TYPE names it.
type kind uint8

const (
	kindString kind = iota + 1
	kindList
	kindSet
	kindZSet
	kindHash
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindList:
		return "list"
	case kindSet:
		return "set"
	case kindZSet:
		return "zset"
	case kindHash:
		return "hash"
	}
	return "none"
}

// object is one stored value. Exactly one of the value fields is used,
// according to kind.
//
// Objects are shared with live snapshots: an object whose epoch is older
// than the store's latest live snapshot may be read by a snapshot writer at
// any time, so it must never be mutated; Store.mutable clones it first.
// Byte slices held inside an object (string value, list elements, hash
// values) are never written in place once stored, so clones may share them.
type object struct {
	kind kind
	// ownStr reports that str's array belongs to this object alone (a
	// clone shares it with a snapshot's frozen original), so SET may
	// overwrite it in place when the new value fits.
	ownStr bool
	epoch  uint64
	// key is the key the object is stored at, set by keyTable.put.
	key string
	str []byte
	// agg is the value of the aggregate kinds: a *deque (list), a
	// map[string]struct{} (set), a *hash or a *zset; see list, set, hash
	// and zset. One field rather than four keeps an object at 80 bytes.
	agg any
}

func (o *object) list() *deque             { return o.agg.(*deque) }
func (o *object) set() map[string]struct{} { return o.agg.(map[string]struct{}) }
func (o *object) hash() *hash              { return o.agg.(*hash) }
func (o *object) zset() *zset              { return o.agg.(*zset) }

// clone returns a copy of o that shares no mutable structure with it.
func (o *object) clone(epoch uint64) *object {
	c := &object{kind: o.kind, epoch: epoch}
	switch o.kind {
	case kindString:
		c.str = o.str
	case kindList:
		c.agg = o.list().clone()
	case kindSet:
		c.agg = maps.Clone(o.set())
	case kindHash:
		c.agg = o.hash().clone()
	case kindZSet:
		c.agg = o.zset().clone()
	}
	return c
}

// size returns the number of elements of an aggregate value.
func (o *object) size() int {
	switch o.kind {
	case kindList:
		return o.list().len()
	case kindSet:
		return len(o.set())
	case kindHash:
		return o.hash().len()
	case kindZSet:
		return o.zset().len()
	}
	return 1
}

// deque is a growable ring buffer: pushes and pops at both ends are
// amortized O(1) and indexing is O(1).
type deque struct {
	buf  [][]byte // len(buf) is zero or a power of two
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) at(i int) []byte { return d.buf[(d.head+i)&(len(d.buf)-1)] }

func (d *deque) grow() {
	if d.n < len(d.buf) {
		return
	}
	size := max(8, 2*len(d.buf))
	nb := make([][]byte, size)
	for i := 0; i < d.n; i++ {
		nb[i] = d.at(i)
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(v []byte) {
	d.grow()
	d.buf[(d.head+d.n)&(len(d.buf)-1)] = v
	d.n++
}

func (d *deque) pushFront(v []byte) {
	d.grow()
	d.head = (d.head - 1) & (len(d.buf) - 1)
	d.buf[d.head] = v
	d.n++
}

func (d *deque) popFront() []byte {
	v := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) & (len(d.buf) - 1)
	d.n--
	return v
}

func (d *deque) popBack() []byte {
	i := (d.head + d.n - 1) & (len(d.buf) - 1)
	v := d.buf[i]
	d.buf[i] = nil
	d.n--
	return v
}

func (d *deque) clone() *deque {
	c := &deque{}
	if d.n > 0 {
		size := 8
		for size < d.n {
			size *= 2
		}
		c.buf = make([][]byte, size)
		for i := 0; i < d.n; i++ {
			c.buf[i] = d.at(i)
		}
		c.n = d.n
	}
	return c
}

// hash is a field -> value map that remembers insertion order, the order
// Redis replies in for small (listpack-encoded) hashes.
type hash struct {
	idx    map[string]int // field -> position in fields
	fields []hashField
	dead   int // deleted slots in fields
}

type hashField struct {
	name  string
	value []byte
	live  bool
}

func newHash() *hash { return &hash{idx: make(map[string]int)} }

// newHashSize returns an empty hash with room for n fields.
func newHashSize(n int) *hash {
	return &hash{idx: make(map[string]int, n), fields: make([]hashField, 0, n)}
}

func (h *hash) len() int { return len(h.idx) }

func (h *hash) get(field []byte) ([]byte, bool) {
	i, ok := h.idx[string(field)]
	if !ok {
		return nil, false
	}
	return h.fields[i].value, true
}

// set stores value under field and reports whether the field is new.
func (h *hash) set(field string, value []byte) bool {
	if i, ok := h.idx[field]; ok {
		h.fields[i].value = value
		return false
	}
	h.idx[field] = len(h.fields)
	h.fields = append(h.fields, hashField{name: field, value: value, live: true})
	return true
}

func (h *hash) del(field []byte) bool {
	i, ok := h.idx[string(field)]
	if !ok {
		return false
	}
	delete(h.idx, string(field))
	h.fields[i] = hashField{}
	h.dead++
	if h.dead > 16 && h.dead > len(h.fields)/2 {
		h.compact()
	}
	return true
}

func (h *hash) compact() {
	live := h.fields[:0]
	for _, f := range h.fields {
		if f.live {
			h.idx[f.name] = len(live)
			live = append(live, f)
		}
	}
	clear(h.fields[len(live):])
	h.fields, h.dead = live, 0
}

// each calls fn for every field in insertion order.
func (h *hash) each(fn func(field string, value []byte)) {
	for _, f := range h.fields {
		if f.live {
			fn(f.name, f.value)
		}
	}
}

func (h *hash) clone() *hash {
	c := &hash{idx: make(map[string]int, len(h.idx)), fields: make([]hashField, 0, len(h.idx))}
	h.each(func(field string, value []byte) {
		c.idx[field] = len(c.fields)
		c.fields = append(c.fields, hashField{name: field, value: value, live: true})
	})
	return c
}

// zset is a sorted set: a member -> score map plus the members ordered by
// (score, member), as Redis orders them.
type zset struct {
	scores map[string]float64
	sorted []zmember
}

type zmember struct {
	member string
	score  float64
}

func newZSet() *zset { return &zset{scores: make(map[string]float64)} }

func (z *zset) len() int { return len(z.sorted) }

func zless(a zmember, score float64, member string) bool {
	if a.score != score {
		return a.score < score
	}
	return a.member < member
}

// search returns the position of the first element not less than (score, member).
func (z *zset) search(score float64, member string) int {
	return sort.Search(len(z.sorted), func(i int) bool { return !zless(z.sorted[i], score, member) })
}

// set inserts or moves member to score. A score of -0 is stored as 0, as
// Redis's compact encoding of small sorted sets does.
func (z *zset) set(member string, score float64) {
	if score == 0 {
		score = 0
	}
	if old, ok := z.scores[member]; ok {
		if old == score {
			return
		}
		z.remove(member, old)
	}
	z.scores[member] = score
	i := z.search(score, member)
	z.sorted = slices.Insert(z.sorted, i, zmember{member: member, score: score})
}

func (z *zset) remove(member string, score float64) {
	i := z.search(score, member)
	z.sorted = slices.Delete(z.sorted, i, i+1)
	delete(z.scores, member)
}

func (z *zset) del(member []byte) bool {
	score, ok := z.scores[string(member)]
	if !ok {
		return false
	}
	z.remove(string(member), score)
	return true
}

func (z *zset) clone() *zset {
	return &zset{scores: maps.Clone(z.scores), sorted: slices.Clone(z.sorted)}
}

// sortedMembers returns the members of a set in a deterministic order:
// numeric when every member is an integer (the order of Redis's intset
// encoding), byte order otherwise.
func sortedMembers(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	ints := make([]int64, 0, len(set))
	for m := range set {
		out = append(out, m)
		if n, ok := parseInt([]byte(m)); ok && ints != nil {
			ints = append(ints, n)
		} else {
			ints = nil
		}
	}
	if ints != nil {
		slices.Sort(ints)
		for i, n := range ints {
			out[i] = string(itob(n))
		}
		return out
	}
	slices.Sort(out)
	return out
}

func cloneBytes(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// newStringObject returns a string object for a new, non-empty key whose
// key and value share one allocation: the key's bytes first, never written
// again (object.key is a string over them), then the value's, which the
// object owns and may overwrite in place (str's capacity ends where the
// allocation does, so no write reaches the key). One object fewer per key
// to allocate and for the garbage collector to mark. If the value later
// outgrows its place, the key keeps the first allocation alive, so a key
// costs at most its first value's size in addition.
func newStringObject(key, val []byte, epoch uint64) *object {
	buf := make([]byte, len(key)+len(val))
	copy(buf, key)
	copy(buf[len(key):], val)
	return &object{kind: kindString, epoch: epoch, ownStr: true,
		key: unsafe.String(unsafe.SliceData(buf), len(key)), str: buf[len(key):]}
}
