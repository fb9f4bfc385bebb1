package kv

func cmdSAdd(x *execCtx) {
	key := x.argv[1]
	o, ok := x.lookupType(key, kindSet)
	if !ok {
		return
	}
	if o == nil {
		o = x.newObject(kindSet)
		x.add(key, o)
	} else {
		o = x.mutable(key, o)
	}
	added := int64(0)
	for _, m := range x.argv[2:] {
		if _, has := o.set[string(m)]; !has {
			o.set[string(m)] = struct{}{}
			added++
		}
	}
	if added > 0 {
		x.propagateAsIs()
	}
	x.int(added)
}

func cmdSRem(x *execCtx) {
	key := x.argv[1]
	o, ok := x.lookupType(key, kindSet)
	if !ok {
		return
	}
	if o == nil {
		x.int(0)
		return
	}
	o = x.mutable(key, o)
	n := int64(0)
	for _, m := range x.argv[2:] {
		if _, has := o.set[string(m)]; has {
			delete(o.set, string(m))
			n++
		}
	}
	x.delIfEmpty(key, o)
	if n > 0 {
		x.propagateAsIs()
	}
	x.int(n)
}

// cmdSMembers replies the members in byte order (Redis's order depends on
// its encoding; only integer sets are ordered there).
func cmdSMembers(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindSet)
	if !ok {
		return
	}
	if o == nil {
		x.array(0)
		return
	}
	members := sortedMembers(o.set)
	x.array(len(members))
	for _, m := range members {
		x.bulkString(m)
	}
}

func cmdSCard(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindSet)
	if !ok {
		return
	}
	if o == nil {
		x.int(0)
		return
	}
	x.int(int64(len(o.set)))
}

func cmdSIsMember(x *execCtx) {
	o, ok := x.lookupType(x.argv[1], kindSet)
	if !ok {
		return
	}
	if o != nil {
		if _, has := o.set[string(x.argv[2])]; has {
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
		o, ok := x.lookupType(key, kindSet)
		if !ok {
			return
		}
		if o == nil {
			x.null()
			return
		}
		o = x.mutable(key, o)
		for m := range o.set {
			delete(o.set, m)
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
	o, ok := x.lookupType(key, kindSet)
	if !ok {
		return
	}
	if o == nil || count == 0 {
		x.array(0)
		return
	}
	if count >= int64(len(o.set)) {
		members := sortedMembers(o.set)
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
	for m := range o.set {
		if count == 0 {
			break
		}
		count--
		delete(o.set, m)
		x.bulkString(m)
		x.propagate(wordSREM, key, []byte(m))
	}
}
