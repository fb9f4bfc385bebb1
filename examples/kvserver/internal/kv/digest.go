package kv

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Digest returns a hash of the whole dataset: every database, key, type,
// value and expiry time, in a canonical order (keys, set members and hash
// fields sorted), so equal datasets give equal digests whatever order they
// were built in. Keys whose time has passed but that were not deleted
// count. It takes O(n log n) time under the store lock: for tests and
// debugging.
func (s *Store) Digest() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return digestDBs(s.dbs)
}

func digestDBs(dbs []*db) uint64 {
	h := xxhash.New()
	var buf []byte
	num := func(n uint64) { buf = binary.AppendUvarint(buf, n) }
	str := func(b string) {
		num(uint64(len(b)))
		buf = append(buf, b...)
	}
	for i, d := range dbs {
		if d.keys.len() == 0 {
			continue
		}
		num(uint64(i))
		num(uint64(d.keys.len()))
		keys := make([]string, 0, d.keys.len())
		for k := range d.keys.all() {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			o := d.keys.get(k)
			str(k)
			buf = append(buf, byte(o.kind))
			if at, ok := d.expires[k]; ok {
				num(uint64(at) + 1)
			} else {
				num(0)
			}
			switch o.kind {
			case kindString:
				str(string(o.str))
			case kindList:
				num(uint64(o.list().len()))
				for j := range o.list().len() {
					str(string(o.list().at(j)))
				}
			case kindSet:
				num(uint64(len(o.set())))
				for _, m := range sortedMembers(o.set()) {
					str(m)
				}
			case kindHash:
				num(uint64(o.hash().len()))
				fields := make([]string, 0, o.hash().len())
				o.hash().each(func(f string, _ []byte) { fields = append(fields, f) })
				slices.Sort(fields)
				for _, f := range fields {
					v, _ := o.hash().get([]byte(f))
					str(f)
					str(string(v))
				}
			case kindZSet:
				num(uint64(o.zset().len()))
				for _, m := range o.zset().sorted {
					str(m.member)
					buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(m.score))
				}
			}
			if len(buf) > 32<<10 {
				h.Write(buf)
				buf = buf[:0]
			}
		}
	}
	h.Write(buf)
	return h.Sum64()
}
