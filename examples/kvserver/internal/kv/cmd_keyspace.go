package kv

import (
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

func cmdPing(x *execCtx) {
	switch len(x.argv) {
	case 1:
		x.simple("PONG")
	case 2:
		x.bulk(x.argv[1])
	default:
		x.err("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(x *execCtx) { x.bulk(x.argv[1]) }

func cmdSelect(x *execCtx) {
	n, ok := x.argInt(1)
	if !ok {
		return
	}
	if n < 0 || n >= int64(len(x.s.dbs)) {
		x.err("ERR DB index is out of range")
		return
	}
	x.c.DB = int(n)
	x.ok()
}

func cmdDBSize(x *execCtx) { x.int(int64(x.db.keys.len())) }

func cmdKeys(x *execCtx) {
	pattern := x.argv[1]
	all := len(pattern) == 1 && pattern[0] == '*'
	var keys []string
	for k := range x.db.keys.all() {
		if (all || globMatch(pattern, []byte(k), false)) && !x.expired([]byte(k)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	x.array(len(keys))
	for _, k := range keys {
		x.bulkString(k)
	}
}

// scanPos is the SCAN cursor position of a key: cursors walk keys in the
// order of a hash of their name, so a cursor stays meaningful while keys
// come and go, and every key present for the whole scan is returned.
func scanPos(key string) uint64 { return xxhash.Sum64String(key)>>1 + 1 }

func cmdScan(x *execCtx) {
	cursor, err := strconv.ParseUint(string(x.argv[1]), 10, 64)
	if err != nil {
		x.err("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pattern, typ []byte
	for i := 2; i < len(x.argv); i += 2 {
		if i+1 >= len(x.argv) {
			x.err(errSyntax)
			return
		}
		switch {
		case x.argIs(i, "count"):
			n, ok := x.argInt(i + 1)
			if !ok {
				return
			}
			if n < 1 {
				x.err(errSyntax)
				return
			}
			count = n
		case x.argIs(i, "match"):
			pattern = x.argv[i+1]
		case x.argIs(i, "type"):
			typ = x.argv[i+1]
		default:
			x.err(errSyntax)
			return
		}
	}
	type posKey struct {
		pos uint64
		key string
	}
	var page []posKey
	for k := range x.db.keys.all() {
		if p := scanPos(k); p >= cursor {
			page = append(page, posKey{p, k})
		}
	}
	slices.SortFunc(page, func(a, b posKey) int {
		if a.pos != b.pos {
			if a.pos < b.pos {
				return -1
			}
			return 1
		}
		return compareStrings(a.key, b.key)
	})
	next := uint64(0)
	if int64(len(page)) > count {
		// Never split keys sharing a position across two pages.
		n := int(count)
		for n < len(page) && page[n].pos == page[n-1].pos {
			n++
		}
		if n < len(page) {
			next = page[n].pos
		}
		page = page[:n]
	}
	var keys []string
	for _, pk := range page {
		k := []byte(pk.key)
		if x.lookup(k) == nil { // deletes it on a master, as Redis's SCAN does
			continue
		}
		if pattern != nil && !globMatch(pattern, k, false) {
			continue
		}
		if typ != nil && !equalFold(typ, x.db.keys.get(pk.key).kind.String()) {
			continue
		}
		keys = append(keys, pk.key)
	}
	x.array(2)
	x.bulk(strconv.AppendUint(nil, next, 10))
	x.array(len(keys))
	for _, k := range keys {
		x.bulkString(k)
	}
}

func cmdType(x *execCtx) {
	o := x.lookup(x.argv[1])
	if o == nil {
		x.simple("none")
		return
	}
	x.simple(o.kind.String())
}

func cmdDel(x *execCtx) {
	n := int64(0)
	for _, k := range x.argv[1:] {
		if x.lookup(k) != nil && x.del(k) {
			n++
		}
	}
	if n > 0 {
		x.propagateAsIs()
	}
	x.int(n)
}

func cmdExists(x *execCtx) {
	n := int64(0)
	for _, k := range x.argv[1:] {
		if x.lookup(k) != nil {
			n++
		}
	}
	x.int(n)
}

// cmdExpire runs EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT. Replicas get
// PEXPIREAT with the absolute time in ms (options kept), or DEL when the
// time has already passed.
func cmdExpire(x *execCtx) {
	var nx, xx, gt, lt bool
	for i := 3; i < len(x.argv); i++ {
		switch {
		case x.argIs(i, "nx"):
			nx = true
		case x.argIs(i, "xx"):
			xx = true
		case x.argIs(i, "gt"):
			gt = true
		case x.argIs(i, "lt"):
			lt = true
		default:
			x.err("ERR Unsupported option " + string(x.argv[i]))
			return
		}
	}
	if nx && (xx || gt || lt) {
		x.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		x.err("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := x.argInt(2)
	if !ok {
		return
	}
	name := x.cmd.name
	seconds := name == "expire" || name == "expireat"
	var base int64
	if name == "expire" || name == "pexpire" {
		base = x.nowMs()
	}
	invalid := "ERR invalid expire time in '" + name + "' command"
	if seconds {
		if when > maxInt64/1000 || when < minInt64/1000 {
			x.err(invalid)
			return
		}
		when *= 1000
	}
	if when > maxInt64-base {
		x.err(invalid)
		return
	}
	when += base
	key := x.argv[1]
	if x.lookup(key) == nil {
		x.int(0)
		return
	}
	cur, has := x.db.expires[string(key)]
	if (nx && has) || (xx && !has) || (gt && (!has || when <= cur)) || (lt && has && when >= cur) {
		x.int(0)
		return
	}
	if when <= x.nowMs() && !x.master {
		x.del(key)
		x.propagate(wordDEL, key)
		x.int(1)
		return
	}
	x.db.expires[string(key)] = when
	argv := x.argv
	if name != "pexpireat" {
		argv = slices.Clone(argv)
		argv[0] = wordPEXPIREAT
		argv[2] = itob(when)
	}
	x.propagate(argv...)
	x.int(1)
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)

func cmdPersist(x *execCtx) {
	key := x.argv[1]
	if x.lookup(key) == nil {
		x.int(0)
		return
	}
	if _, ok := x.db.expires[string(key)]; !ok {
		x.int(0)
		return
	}
	delete(x.db.expires, string(key))
	x.propagateAsIs()
	x.int(1)
}

func cmdTTL(x *execCtx) {
	ms := x.ttlMillis(x.argv[1])
	if ms >= 0 && x.cmd.name == "ttl" {
		ms = (ms + 500) / 1000
	}
	x.int(ms)
}

// flushArgs checks the optional ASYNC or SYNC of FLUSHDB and FLUSHALL.
func (x *execCtx) flushArgs() bool {
	if len(x.argv) > 2 || (len(x.argv) == 2 && !x.argIs(1, "async") && !x.argIs(1, "sync")) {
		x.err(errSyntax)
		return false
	}
	return true
}

func cmdFlushDB(x *execCtx) {
	if !x.flushArgs() {
		return
	}
	x.s.dbs[x.dbIndex] = newDB()
	x.propagateAsIs()
	x.ok()
}

func cmdFlushAll(x *execCtx) {
	if !x.flushArgs() {
		return
	}
	for i := range x.s.dbs {
		x.s.dbs[i] = newDB()
	}
	x.propagateAsIs()
	x.ok()
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
