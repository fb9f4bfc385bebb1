package kv

import "unsafe"

// loadArena allocates the objects, keys and small values of a dataset being
// loaded in chunks, so that loading a million keys costs a few thousand
// allocations instead of three million, and the garbage collector has that
// many fewer objects to mark while the load runs and afterwards.
//
// What it hands out is never written in place, apart from string values
// whose object owns them (object.ownStr): SET overwrites those within
// their own capacity, which the chunk's other slices never overlap. A
// chunk stays in memory while anything carved from it does, so memory of
// deleted keys and replaced values is returned only once the whole chunk
// is unreachable; that is bounded by the size of the loaded snapshot.
type loadArena struct {
	objs []object
	buf  []byte
}

const (
	arenaObjects = 256      // objects per chunk
	arenaBytes   = 64 << 10 // bytes per chunk
	arenaMaxCopy = 1 << 10  // larger values get an allocation of their own
)

// object returns a new zero object. a may be nil: then it is allocated
// alone.
func (a *loadArena) object() *object {
	if a == nil {
		return &object{}
	}
	if len(a.objs) == cap(a.objs) {
		a.objs = make([]object, 0, arenaObjects)
	}
	a.objs = a.objs[:len(a.objs)+1]
	return &a.objs[len(a.objs)-1]
}

// bytes returns a copy of b whose capacity is its length.
func (a *loadArena) bytes(b []byte) []byte {
	if a == nil || len(b) > arenaMaxCopy || len(b) == 0 {
		return cloneBytes(b)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaBytes)
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[n:len(a.buf):len(a.buf)]
}

// string returns b as a string. The bytes are copied into the arena and
// never written again, which is what makes the conversion safe.
func (a *loadArena) string(b []byte) string {
	if a == nil || len(b) > arenaMaxCopy || len(b) == 0 {
		return string(b)
	}
	c := a.bytes(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}
