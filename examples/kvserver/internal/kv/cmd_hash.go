package kv

func cmdHSet(x *execCtx) {
	if len(x.argv)%2 != 0 {
		x.err("ERR wrong number of arguments for '" + x.cmd.name + "' command")
		return
	}
	key := x.argv[1]
	o := x.lookupWritable(key, kindHash)
	if o == nil {
		return
	}
	added := int64(0)
	for i := 2; i < len(x.argv); i += 2 {
		if o.hash().set(string(x.argv[i]), cloneBytes(x.argv[i+1])) {
			added++
		}
	}
	x.propagateAsIs()
	if x.cmd.name == "hmset" {
		x.ok()
		return
	}
	x.int(added)
}

func cmdHGet(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindHash, missingNull)
	if o == nil {
		return
	}
	x.bulkOrNull(o.hash().get(x.argv[2]))
}

func cmdHExists(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindHash, missingZero)
	if o == nil {
		return
	}
	if _, has := o.hash().get(x.argv[2]); has {
		x.int(1)
	} else {
		x.int(0)
	}
}

func cmdHDel(x *execCtx) {
	x.removeMembers(kindHash, func(o *object, f []byte) bool { return o.hash().del(f) })
}

func cmdHGetAll(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindHash, missingEmptyArray)
	if o == nil {
		return
	}
	x.array(2 * o.hash().len())
	o.hash().each(func(field string, value []byte) {
		x.bulkString(field)
		x.bulk(value)
	})
}

func cmdHLen(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindHash, missingZero)
	if o == nil {
		return
	}
	x.int(int64(o.hash().len()))
}

func cmdHIncrBy(x *execCtx) {
	by, ok := x.argInt(3)
	if !ok {
		return
	}
	key := x.argv[1]
	o, ok := x.lookupType(key, kindHash)
	if !ok {
		return
	}
	var cur int64
	if o != nil {
		if v, has := o.hash().get(x.argv[2]); has {
			if cur, ok = parseInt(v); !ok {
				x.err("ERR hash value is not an integer")
				return
			}
		}
	}
	if (by < 0 && cur < 0 && by < minInt64-cur) || (by > 0 && cur > 0 && by > maxInt64-cur) {
		x.err(errOverflow)
		return
	}
	cur += by
	o = x.writable(key, o, kindHash)
	o.hash().set(string(x.argv[2]), itob(cur))
	x.propagateAsIs()
	x.int(cur)
}

func cmdHMGet(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindHash)
	if !ok {
		return
	}
	x.array(len(x.argv) - 2)
	for _, f := range x.argv[2:] {
		if o == nil {
			x.null()
			continue
		}
		x.bulkOrNull(o.hash().get(f))
	}
}
