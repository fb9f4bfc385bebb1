package rdb

// Kind is the logical type of a value, independent of how Redis encoded it.
type Kind uint8

// Value kinds.
const (
	KindString Kind = iota
	KindList
	KindSet
	KindZSet
	KindHash
)

// String returns the Redis name of the kind ("string", "list", ...).
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindList:
		return "list"
	case KindSet:
		return "set"
	case KindZSet:
		return "zset"
	case KindHash:
		return "hash"
	}
	return "unknown"
}

// ZMember is one member of a sorted set.
type ZMember struct {
	Member []byte
	Score  float64
}

// HashField is one field of a hash.
type HashField struct {
	Field, Value []byte
}

// Entry is one key and its value.
//
// An Entry returned by Reader.Next, and every slice it holds, is only valid
// until the next call to Next: the Reader reuses the memory. Callers that
// keep anything must copy it, for instance with Clone.
//
// Only the field matching Kind holds the value; the other value fields are
// empty.
type Entry struct {
	DB       int
	Key      []byte
	Kind     Kind
	ExpireAt int64 // absolute expiry in unix milliseconds; 0 means no expiry
	Idle     int64 // LRU idle time in seconds from an IDLE opcode; -1 when absent
	Freq     int   // LFU frequency from a FREQ opcode; -1 when absent

	String []byte      // KindString; integer-encoded values rendered as decimal text
	List   [][]byte    // KindList, head to tail
	Set    [][]byte    // KindSet, in stored order
	Hash   []HashField // KindHash, in stored order
	ZSet   []ZMember   // KindZSet, in stored order
}

// Clone returns a deep copy of e that shares no memory with it. Empty value
// slices become nil in the copy. All bytes are copied into one allocation.
func (e *Entry) Clone() *Entry {
	n := len(e.Key) + len(e.String)
	for _, v := range e.List {
		n += len(v)
	}
	for _, v := range e.Set {
		n += len(v)
	}
	for _, f := range e.Hash {
		n += len(f.Field) + len(f.Value)
	}
	for _, m := range e.ZSet {
		n += len(m.Member)
	}
	buf := make([]byte, 0, n)
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		s := len(buf)
		buf = append(buf, b...)
		return buf[s:len(buf):len(buf)]
	}
	c := &Entry{DB: e.DB, Kind: e.Kind, ExpireAt: e.ExpireAt, Idle: e.Idle, Freq: e.Freq}
	c.Key = cp(e.Key)
	c.String = cp(e.String)
	if len(e.List) > 0 {
		c.List = make([][]byte, len(e.List))
		for i, v := range e.List {
			c.List[i] = cp(v)
		}
	}
	if len(e.Set) > 0 {
		c.Set = make([][]byte, len(e.Set))
		for i, v := range e.Set {
			c.Set[i] = cp(v)
		}
	}
	if len(e.Hash) > 0 {
		c.Hash = make([]HashField, len(e.Hash))
		for i, f := range e.Hash {
			c.Hash[i] = HashField{Field: cp(f.Field), Value: cp(f.Value)}
		}
	}
	if len(e.ZSet) > 0 {
		c.ZSet = make([]ZMember, len(e.ZSet))
		for i, m := range e.ZSet {
			c.ZSet[i] = ZMember{Member: cp(m.Member), Score: m.Score}
		}
	}
	return c
}
