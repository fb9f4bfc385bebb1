package kv

// String option flags, as parsed for SET and GETEX.
const (
	optNX = 1 << iota
	optXX
	optGet
	optKeepTTL
	optPersist
	optEX
	optPX
	optEXAT
	optPXAT
)

const optExpire = optEX | optPX | optEXAT | optPXAT

// parseStringOptions parses the options of SET (from argument 3) or GETEX
// (from argument 2, getex true) with Redis 7.0's rules, returning the flags
// and the index of the expire argument (0 if none).
func (x *execCtx) parseStringOptions(getex bool) (flags, expireArg int, ok bool) {
	j := 3
	if getex {
		j = 2
	}
	for ; j < len(x.argv); j++ {
		hasNext := j+1 < len(x.argv)
		switch {
		case x.argIs(j, "nx") && flags&optXX == 0 && !getex:
			flags |= optNX
		case x.argIs(j, "xx") && flags&optNX == 0 && !getex:
			flags |= optXX
		case x.argIs(j, "get") && !getex:
			flags |= optGet
		case x.argIs(j, "keepttl") && flags&(optPersist|optExpire) == 0 && !getex:
			flags |= optKeepTTL
		case x.argIs(j, "persist") && getex && flags&(optExpire|optKeepTTL) == 0:
			flags |= optPersist
		case x.argIs(j, "ex") && flags&(optKeepTTL|optPersist|optEXAT|optPX|optPXAT) == 0 && hasNext:
			flags |= optEX
			expireArg = j + 1
			j++
		case x.argIs(j, "px") && flags&(optKeepTTL|optPersist|optEX|optEXAT|optPXAT) == 0 && hasNext:
			flags |= optPX
			expireArg = j + 1
			j++
		case x.argIs(j, "exat") && flags&(optKeepTTL|optPersist|optEX|optPX|optPXAT) == 0 && hasNext:
			flags |= optEXAT
			expireArg = j + 1
			j++
		case x.argIs(j, "pxat") && flags&(optKeepTTL|optPersist|optEX|optEXAT|optPX) == 0 && hasNext:
			flags |= optPXAT
			expireArg = j + 1
			j++
		default:
			x.err(errSyntax)
			return 0, 0, false
		}
	}
	return flags, expireArg, true
}

// expireMillis turns an EX/PX/EXAT/PXAT argument into an absolute time
// in ms, replying the error when it is invalid.
func (x *execCtx) expireMillis(arg []byte, flags int) (int64, bool) {
	ms, ok := parseInt(arg)
	if !ok {
		x.err(errNotInt)
		return 0, false
	}
	seconds := flags&(optEX|optEXAT) != 0
	if ms <= 0 || (seconds && ms > maxInt64/1000) {
		x.err("ERR invalid expire time in '" + x.cmd.name + "' command")
		return 0, false
	}
	if seconds {
		ms *= 1000
	}
	if flags&(optEX|optPX) != 0 {
		ms += x.nowMs()
	}
	if ms <= 0 {
		x.err("ERR invalid expire time in '" + x.cmd.name + "' command")
		return 0, false
	}
	return ms, true
}

func cmdSet(x *execCtx) {
	flags, expireArg, ok := x.parseStringOptions(false)
	if !ok {
		return
	}
	var expire []byte
	if expireArg > 0 {
		expire = x.argv[expireArg]
	}
	x.setGeneric(flags, x.argv[1], x.argv[2], expire)
}

// cmdSetEx runs SETEX key seconds value and PSETEX key ms value.
func cmdSetEx(x *execCtx) {
	flags := optEX
	if x.cmd.name == "psetex" {
		flags = optPX
	}
	x.setGeneric(flags, x.argv[1], x.argv[3], x.argv[2])
}

func cmdSetNX(x *execCtx) {
	key := x.argv[1]
	if x.lookup(key) != nil {
		x.int(0)
		return
	}
	x.setString(key, x.argv[2], false)
	x.propagateAsIs()
	x.int(1)
}

// setGeneric is SET with parsed options. With an expiry it propagates
// SET key value PXAT <ms>; otherwise the command as sent, minus GET.
func (x *execCtx) setGeneric(flags int, key, val, expire []byte) {
	var when int64
	if expire != nil {
		var ok bool
		if when, ok = x.expireMillis(expire, flags); !ok {
			return
		}
	}
	if flags&optGet != 0 {
		o, ok := x.lookupType(key, kindString)
		if !ok {
			return
		}
		if o == nil {
			x.null()
		} else {
			x.bulk(o.str)
		}
	}
	old := x.lookup(key)
	found := old != nil
	if (flags&optNX != 0 && found) || (flags&optXX != 0 && !found) {
		if flags&optGet == 0 {
			x.null()
		}
		return
	}
	x.setStringOver(key, old, val, flags&optKeepTTL != 0)
	switch {
	case expire != nil:
		x.db.expires[string(key)] = when
		x.propagate(wordSET, key, val, wordPXAT, itob(when))
	case flags&optGet != 0:
		argv := make([][]byte, 0, len(x.argv)-1)
		for i, a := range x.argv {
			if i < 3 || !x.argIs(i, "get") {
				argv = append(argv, a)
			}
		}
		x.propagate(argv...)
	default:
		x.propagateAsIs()
	}
	if flags&optGet == 0 {
		x.ok()
	}
}

func cmdGet(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindString)
	if !ok {
		return
	}
	if o == nil {
		x.null()
		return
	}
	x.bulk(o.str)
}

func cmdGetEx(x *execCtx) {
	flags, expireArg, ok := x.parseStringOptions(true)
	if !ok {
		return
	}
	key := x.argv[1]
	o, ok := x.lookupType(key, kindString)
	if !ok {
		return
	}
	if o == nil {
		x.null()
		return
	}
	var when int64
	if expireArg > 0 {
		if when, ok = x.expireMillis(x.argv[expireArg], flags); !ok {
			return
		}
	}
	x.bulk(o.str)
	switch {
	case flags&(optEXAT|optPXAT) != 0 && when <= x.nowMs() && !x.master:
		x.del(key)
		x.propagate(wordDEL, key)
	case expireArg > 0:
		x.db.expires[string(key)] = when
		x.propagate(wordPEXPIREAT, key, itob(when))
	case flags&optPersist != 0:
		if _, has := x.db.expires[string(key)]; has {
			delete(x.db.expires, string(key))
			x.propagate(wordPERSIST, key)
		}
	}
}

func cmdGetDel(x *execCtx) {
	key := x.argv[1]
	o, ok := x.lookupType(key, kindString)
	if !ok {
		return
	}
	if o == nil {
		x.null()
		return
	}
	x.bulk(o.str)
	x.del(key)
	x.propagate(wordDEL, key)
}

func cmdMSet(x *execCtx) {
	if len(x.argv)%2 == 0 {
		x.err("ERR wrong number of arguments for 'mset' command")
		return
	}
	for i := 1; i < len(x.argv); i += 2 {
		x.setString(x.argv[i], x.argv[i+1], false)
	}
	x.propagateAsIs()
	x.ok()
}

func cmdMGet(x *execCtx) {
	x.array(len(x.argv) - 1)
	for _, k := range x.argv[1:] {
		if o := x.lookup(k); o != nil && o.kind == kindString {
			x.bulk(o.str)
		} else {
			x.null()
		}
	}
}

// cmdIncr runs INCR, DECR, INCRBY and DECRBY.
func cmdIncr(x *execCtx) {
	var by int64 = 1
	switch x.cmd.name {
	case "decr":
		by = -1
	case "incrby", "decrby":
		var ok bool
		if by, ok = x.argInt(2); !ok {
			return
		}
		if x.cmd.name == "decrby" {
			if by == minInt64 {
				x.err("ERR decrement would overflow")
				return
			}
			by = -by
		}
	}
	key := x.argv[1]
	o, ok := x.lookupType(key, kindString)
	if !ok {
		return
	}
	var cur int64
	if o != nil {
		if cur, ok = parseInt(o.str); !ok {
			x.err(errNotInt)
			return
		}
	}
	if (by < 0 && cur < 0 && by < minInt64-cur) || (by > 0 && cur > 0 && by > maxInt64-cur) {
		x.err(errOverflow)
		return
	}
	cur += by
	x.setString(key, itob(cur), true)
	x.propagateAsIs()
	x.int(cur)
}

// cmdIncrByFloat computes in long double precision like Redis and
// propagates SET key <result> KEEPTTL.
func cmdIncrByFloat(x *execCtx) {
	key := x.argv[1]
	o, ok := x.lookupType(key, kindString)
	if !ok {
		return
	}
	cur := parseLongDoubleZero()
	if o != nil {
		if cur, ok = parseLongDouble(o.str); !ok {
			x.err(errNotFloat)
			return
		}
	}
	incr, ok := parseLongDouble(x.argv[2])
	if !ok {
		x.err(errNotFloat)
		return
	}
	val, ok := incrLongDouble(cur, incr)
	if !ok {
		x.err("ERR increment would produce NaN or Infinity")
		return
	}
	x.setString(key, val, true)
	x.propagate(wordSET, key, val, wordKEEPTTL)
	x.bulk(val)
}

func cmdAppend(x *execCtx) {
	key := x.argv[1]
	o, ok := x.lookupType(key, kindString)
	if !ok {
		return
	}
	if o == nil {
		x.setString(key, x.argv[2], true)
		x.propagateAsIs()
		x.int(int64(len(x.argv[2])))
		return
	}
	o = x.mutable(key, o)
	// A snapshot's copy may share the array but only reads up to its own
	// length, so appending into spare capacity leaves it intact.
	o.str = append(o.str, x.argv[2]...)
	x.propagateAsIs()
	x.int(int64(len(o.str)))
}

func cmdStrlen(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindString)
	if !ok {
		return
	}
	if o == nil {
		x.int(0)
		return
	}
	x.int(int64(len(o.str)))
}
