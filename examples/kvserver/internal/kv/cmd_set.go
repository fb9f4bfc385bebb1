package kv

func cmdSAdd(x *execCtx) {
	key := x.argv[1]
	o := x.lookupWritable(key, kindSet)
	if o == nil {
		return
	}
	added := int64(0)
	for _, m := range x.argv[2:] {
		if _, has := o.set()[string(m)]; !has {
			o.set()[string(m)] = struct{}{}
			added++
		}
	}
	if added > 0 {
		x.propagateAsIs()
	}
	x.int(added)
}

func cmdSRem(x *execCtx) {
	x.removeMembers(kindSet, func(o *object, m []byte) bool {
		if _, has := o.set()[string(m)]; !has {
			return false
		}
		delete(o.set(), string(m))
		return true
	})
}

// cmdSMembers replies the members in byte order (Redis's order depends on
// its encoding; only integer sets are ordered there).
func cmdSMembers(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindSet, missingEmptyArray)
	if o == nil {
		return
	}
	members := sortedMembers(o.set())
	x.array(len(members))
	for _, m := range members {
		x.bulkString(m)
	}
}

func cmdSCard(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindSet, missingZero)
	if o == nil {
		return
	}
	x.int(int64(len(o.set())))
}

func cmdSIsMember(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindSet)
	if !ok {
		return
	}
	if o != nil {
		if _, has := o.set()[string(x.argv[2])]; has {
			x.int(1)
			return
		}
	}
	x.int(0)
}

// cmdSPop removes random members. Replicas get SREM key member for each
// popped member (wrapped in MULTI/EXEC when there are several, as Redis
// 7.0 sends one SREM per member), or DEL key when the count takes the
// whole set.
func cmdSPop(x *execCtx) {
	if len(x.argv) > 3 {
		x.err(errSyntax)
		return
	}
	key := x.argv[1]
	if len(x.argv) == 2 {
		o := x.lookupOr(key, kindSet, missingNull)
		if o == nil {
			return
		}
		o = x.mutable(key, o)
		for m := range o.set() {
			delete(o.set(), m)
			x.bulkString(m)
			x.propagate(wordSREM, key, []byte(m))
			break
		}
		x.delIfEmpty(key, o)
		return
	}
	count, ok := x.argCount(2)
	if !ok {
		return
	}
	o := x.lookupOr(key, kindSet, missingEmptyArray)
	if o == nil {
		return
	}
	if count == 0 {
		x.array(0)
		return
	}
	if count >= int64(len(o.set())) {
		members := sortedMembers(o.set())
		x.del(key)
		x.propagate(wordDEL, key)
		x.array(len(members))
		for _, m := range members {
			x.bulkString(m)
		}
		return
	}
	o = x.mutable(key, o)
	x.array(int(count))
	for m := range o.set() {
		if count == 0 {
			break
		}
		count--
		delete(o.set(), m)
		x.bulkString(m)
		x.propagate(wordSREM, key, []byte(m))
	}
}
