package kv

// cmdPush runs LPUSH and RPUSH.
func cmdPush(x *execCtx) {
	key := x.argv[1]
	o := x.lookupWritable(key, kindList)
	if o == nil {
		return
	}
	left := x.cmd.name == "lpush"
	for _, v := range x.argv[2:] {
		if left {
			o.list().pushFront(cloneBytes(v))
		} else {
			o.list().pushBack(cloneBytes(v))
		}
	}
	x.propagateAsIs()
	x.int(int64(o.list().len()))
}

// cmdPop runs LPOP and RPOP, with an optional count.
func cmdPop(x *execCtx) {
	if len(x.argv) > 3 {
		x.err("ERR wrong number of arguments for '" + x.cmd.name + "' command")
		return
	}
	hasCount := len(x.argv) == 3
	count := int64(1)
	if hasCount {
		var ok bool
		if count, ok = x.argCount(2); !ok {
			return
		}
	}
	key := x.argv[1]
	missing := missingNull
	if hasCount {
		missing = missingNullArray
	}
	o := x.lookupOr(key, kindList, missing)
	if o == nil {
		return
	}
	if hasCount && count == 0 {
		x.array(0)
		return
	}
	o = x.mutable(key, o)
	left := x.cmd.name == "lpop"
	n := min(count, int64(o.list().len()))
	if hasCount {
		x.array(int(n))
	}
	for range n {
		if left {
			x.bulk(o.list().popFront())
		} else {
			x.bulk(o.list().popBack())
		}
	}
	x.delIfEmpty(key, o)
	x.propagateAsIs()
}

func cmdLRange(x *execCtx) {
	o, lo, hi := x.lookupRange(kindList)
	if o == nil {
		return
	}
	x.array(int(hi - lo + 1))
	for i := lo; i <= hi; i++ {
		x.bulk(o.list().at(int(i)))
	}
}

// rangeIndexes resolves Redis start/stop indexes (negative from the end)
// against n elements, reporting false for an empty range.
func rangeIndexes(start, stop, n int64) (int64, int64, bool) {
	if start < 0 {
		start = n + start
	}
	if stop < 0 {
		stop = n + stop
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= n {
		return 0, 0, false
	}
	if stop >= n {
		stop = n - 1
	}
	return start, stop, true
}

func cmdLLen(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindList, missingZero)
	if o == nil {
		return
	}
	x.int(int64(o.list().len()))
}
