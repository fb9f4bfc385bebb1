package kv

// This file holds the shapes the aggregate commands (hash, set, sorted set
// and list) share: looking a key up with its type and answering for a
// missing key, getting a value ready to be written, and removing members.

// missingReply names the reply a command gives when its key is missing.
type missingReply uint8

const (
	missingZero       missingReply = iota // :0, a count or a flag
	missingNull                           // the null bulk string
	missingEmptyArray                     // *0, an empty array
	missingNullArray                      // *-1, the null array
)

// lookupOr returns the value of kind k at key, or nil when the command is
// over: it has then appended WRONGTYPE when the key holds another type, or
// the reply named by missing when the key does not exist.
func (x *execCtx) lookupOr(key []byte, k kind, missing missingReply) *object {
	o, ok := x.lookupType(key, k)
	if !ok || o != nil {
		return o
	}
	switch missing {
	case missingZero:
		x.int(0)
	case missingNull:
		x.null()
	case missingEmptyArray:
		x.array(0)
	case missingNullArray:
		x.nullArray()
	}
	return nil
}

// writable returns the value at key ready to be changed in place, given o,
// what lookupType found there: o made mutable (see mutable), or, when o is
// nil, a new empty value of kind k stored at key.
func (x *execCtx) writable(key []byte, o *object, k kind) *object {
	if o == nil {
		o = x.newObject(k)
		x.add(key, o)
		return o
	}
	return x.mutable(key, o)
}

// removeMembers runs HDEL, SREM and ZREM: it removes each member named
// from argument 2 on from the value of kind k at key with del, which
// reports whether the member was there, deletes the key once its value is
// empty, propagates the command as is when anything was removed and
// replies how many members were removed (0 for a missing key).
func (x *execCtx) removeMembers(k kind, del func(o *object, member []byte) bool) {
	key := x.argv[1]
	o := x.lookupOr(key, k, missingZero)
	if o == nil {
		return
	}
	o = x.mutable(key, o)
	n := int64(0)
	for _, m := range x.argv[2:] {
		if del(o, m) {
			n++
		}
	}
	x.delIfEmpty(key, o)
	if n > 0 {
		x.propagateAsIs()
	}
	x.int(n)
}

// lookupWritable looks the value of kind k up at key and returns it ready
// to be changed in place (see writable), creating it when missing. It
// returns nil, having appended WRONGTYPE, when the key holds another type.
func (x *execCtx) lookupWritable(key []byte, k kind) *object {
	o, ok := x.lookupType(key, k)
	if !ok {
		return nil
	}
	return x.writable(key, o, k)
}

// lookupRange begins LRANGE and the index form of ZRANGE: it parses the
// start and stop indexes at arguments 2 and 3, looks the value of kind k up
// at argument 1 and resolves the indexes against its size (see
// rangeIndexes). It returns the value and the inclusive range lo..hi, or a
// nil value when the command is over, having replied an error, or an empty
// array for a missing key or an empty range.
func (x *execCtx) lookupRange(k kind) (o *object, lo, hi int64) {
	start, ok := x.argInt(2)
	if !ok {
		return nil, 0, 0
	}
	stop, ok := x.argInt(3)
	if !ok {
		return nil, 0, 0
	}
	o = x.lookupOr(x.argv[1], k, missingEmptyArray)
	if o == nil {
		return nil, 0, 0
	}
	lo, hi, ok = rangeIndexes(start, stop, int64(o.size()))
	if !ok {
		x.array(0)
		return nil, 0, 0
	}
	return o, lo, hi
}
