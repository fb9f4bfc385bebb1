package kv

import "math"

const (
	zaddNX = 1 << iota
	zaddXX
	zaddGT
	zaddLT
	zaddCH
	zaddIncr
)

func cmdZAdd(x *execCtx) {
	flags := 0
	i := 2
loop:
	for ; i < len(x.argv); i++ {
		switch {
		case x.argIs(i, "nx"):
			flags |= zaddNX
		case x.argIs(i, "xx"):
			flags |= zaddXX
		case x.argIs(i, "ch"):
			flags |= zaddCH
		case x.argIs(i, "incr"):
			flags |= zaddIncr
		case x.argIs(i, "gt"):
			flags |= zaddGT
		case x.argIs(i, "lt"):
			flags |= zaddLT
		default:
			break loop
		}
	}
	x.zadd(flags, i)
}

func cmdZIncrBy(x *execCtx) { x.zadd(zaddIncr, 2) }

// zadd is ZADD (and ZINCRBY) with parsed flags and the score/member pairs
// starting at argument first.
func (x *execCtx) zadd(flags, first int) {
	elements := len(x.argv) - first
	if elements%2 != 0 || elements == 0 {
		x.err(errSyntax)
		return
	}
	elements /= 2
	nx, xx, gt, lt := flags&zaddNX != 0, flags&zaddXX != 0, flags&zaddGT != 0, flags&zaddLT != 0
	incr := flags&zaddIncr != 0
	if nx && xx {
		x.err("ERR XX and NX options at the same time are not compatible")
		return
	}
	if (gt && nx) || (lt && nx) || (gt && lt) {
		x.err("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	}
	if incr && elements > 1 {
		x.err("ERR INCR option supports a single increment-element pair")
		return
	}
	scores := make([]float64, elements)
	for j := range scores {
		f, ok := parseFloat(x.argv[first+2*j])
		if !ok {
			x.err(errNotFloat)
			return
		}
		scores[j] = f
	}
	key := x.argv[1]
	o, ok := x.lookupType(key, kindZSet)
	if !ok {
		return
	}
	var added, updated, processed int64
	var score float64
	if o != nil || !xx {
		o = x.writable(key, o, kindZSet)
	}
	if o != nil {
		for j, s := range scores {
			member := string(x.argv[first+2*j+1])
			cur, exists := o.zset().scores[member]
			switch {
			case exists:
				if nx {
					continue
				}
				if incr {
					s += cur
					if math.IsNaN(s) {
						x.err("ERR resulting score is not a number (NaN)")
						x.delIfEmpty(key, o)
						x.zaddPropagate(added + updated)
						return
					}
				}
				if (gt && s <= cur) || (lt && s >= cur) {
					continue
				}
				processed++
				score = s
				if s != cur {
					o.zset().set(member, s)
					updated++
				}
			case xx:
				continue
			default:
				o.zset().set(member, s)
				added++
				processed++
				score = s
			}
		}
		x.delIfEmpty(key, o)
	}
	x.zaddPropagate(added + updated)
	switch {
	case incr && processed > 0:
		x.double(score)
	case incr:
		x.null()
	case flags&zaddCH != 0:
		x.int(added + updated)
	default:
		x.int(added)
	}
}

func (x *execCtx) zaddPropagate(changes int64) {
	if changes > 0 {
		x.propagateAsIs()
	}
}

func cmdZRem(x *execCtx) {
	x.removeMembers(kindZSet, func(o *object, m []byte) bool { return o.zset().del(m) })
}

func cmdZScore(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindZSet, missingNull)
	if o == nil {
		return
	}
	s, has := o.zset().scores[string(x.argv[2])]
	if !has {
		x.null()
		return
	}
	x.double(s)
}

func cmdZCard(x *execCtx) {
	o := x.lookupOr(x.argv[1], kindZSet, missingZero)
	if o == nil {
		return
	}
	x.int(int64(o.zset().len()))
}

// scoreBound is one end of a BYSCORE range: "(" makes it exclusive.
type scoreBound struct {
	v    float64
	excl bool
}

func parseScoreBound(b []byte) (scoreBound, bool) {
	var r scoreBound
	if len(b) > 0 && b[0] == '(' {
		r.excl = true
		b = b[1:]
	}
	v, ok := parseFloat(b)
	r.v = v
	return r, ok
}

func (r scoreBound) aboveMin(s float64) bool {
	if r.excl {
		return s > r.v
	}
	return s >= r.v
}

func (r scoreBound) belowMax(s float64) bool {
	if r.excl {
		return s < r.v
	}
	return s <= r.v
}

// cmdZRange implements ZRANGE key start stop [BYSCORE|BYLEX] [REV]
// [LIMIT offset count] [WITHSCORES].
func cmdZRange(x *execCtx) {
	var byScore, byLex, rev, withScores bool
	var offset, count int64 = 0, -1
	for i := 4; i < len(x.argv); i++ {
		switch {
		case x.argIs(i, "withscores"):
			withScores = true
		case x.argIs(i, "limit") && i+2 < len(x.argv):
			var ok bool
			if offset, ok = x.argInt(i + 1); !ok {
				return
			}
			if count, ok = x.argInt(i + 2); !ok {
				return
			}
			i += 2
		case !rev && x.argIs(i, "rev"):
			rev = true
		case !byLex && !byScore && x.argIs(i, "bylex"):
			byLex = true
		case !byLex && !byScore && x.argIs(i, "byscore"):
			byScore = true
		default:
			x.err(errSyntax)
			return
		}
	}
	if count != -1 && !byScore && !byLex {
		x.err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
		return
	}
	if withScores && byLex {
		x.err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
		return
	}
	if byScore || byLex {
		x.zrangeFiltered(byLex, rev, withScores, offset, count)
		return
	}
	o, lo, hi := x.lookupRange(kindZSet)
	if o == nil {
		return
	}
	n := int64(o.zset().len())
	x.zreply(hi-lo+1, withScores)
	for i := lo; i <= hi; i++ {
		j := i
		if rev {
			j = n - 1 - i
		}
		x.zmember(o.zset().sorted[j], withScores)
	}
}

// lexBound is one end of a BYLEX range: "[x" inclusive, "(x" exclusive,
// "-" and "+" the infinities.
type lexBound struct {
	v      string
	excl   bool
	minInf bool
	maxInf bool
}

func parseLexBound(b []byte) (lexBound, bool) {
	switch {
	case len(b) == 1 && b[0] == '-':
		return lexBound{minInf: true}, true
	case len(b) == 1 && b[0] == '+':
		return lexBound{maxInf: true}, true
	case len(b) > 0 && b[0] == '[':
		return lexBound{v: string(b[1:])}, true
	case len(b) > 0 && b[0] == '(':
		return lexBound{v: string(b[1:]), excl: true}, true
	}
	return lexBound{}, false
}

func (r lexBound) aboveMin(m string) bool {
	switch {
	case r.minInf:
		return true
	case r.maxInf:
		return false
	case r.excl:
		return m > r.v
	}
	return m >= r.v
}

func (r lexBound) belowMax(m string) bool {
	switch {
	case r.maxInf:
		return true
	case r.minInf:
		return false
	case r.excl:
		return m < r.v
	}
	return m <= r.v
}

// zrangeFiltered runs the BYSCORE and BYLEX forms of ZRANGE.
func (x *execCtx) zrangeFiltered(byLex, rev, withScores bool, offset, count int64) {
	minArg, maxArg := x.argv[2], x.argv[3]
	if rev {
		minArg, maxArg = maxArg, minArg
	}
	var in func(m zmember) bool
	if byLex {
		lo, ok1 := parseLexBound(minArg)
		hi, ok2 := parseLexBound(maxArg)
		if !ok1 || !ok2 {
			x.err("ERR min or max not valid string range item")
			return
		}
		in = func(m zmember) bool { return lo.aboveMin(m.member) && hi.belowMax(m.member) }
	} else {
		lo, ok1 := parseScoreBound(minArg)
		hi, ok2 := parseScoreBound(maxArg)
		if !ok1 || !ok2 {
			x.err("ERR min or max is not a float")
			return
		}
		in = func(m zmember) bool { return lo.aboveMin(m.score) && hi.belowMax(m.score) }
	}
	o := x.lookupOr(x.argv[1], kindZSet, missingEmptyArray)
	if o == nil {
		return
	}
	if offset < 0 {
		x.array(0)
		return
	}
	var picked []zmember
	z := o.zset().sorted
	for i := range z {
		m := z[i]
		if rev {
			m = z[len(z)-1-i]
		}
		if !in(m) {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if count == 0 {
			break
		}
		count--
		picked = append(picked, m)
	}
	x.zreply(int64(len(picked)), withScores)
	for _, m := range picked {
		x.zmember(m, withScores)
	}
}

func (x *execCtx) zreply(n int64, withScores bool) {
	if withScores {
		n *= 2
	}
	x.array(int(n))
}

func (x *execCtx) zmember(m zmember, withScores bool) {
	x.bulkString(m.member)
	if withScores {
		x.double(m.score)
	}
}
