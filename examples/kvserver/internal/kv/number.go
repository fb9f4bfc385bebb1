package kv

import (
	"math"
	"math/big"
	"strconv"
)

// parseInt parses a Redis integer argument: an optional '-' and decimal
// digits with no leading zero, sign or space, within int64 (string2ll).
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	p := b
	if neg {
		p = b[1:]
	}
	if len(p) == 0 || p[0] < '1' || p[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, ch := range p {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := uint64(ch - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// parseFloat parses a Redis double argument as strtod does, refusing
// surrounding space, trailing bytes, NaN and overflow.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || isSpace(b[0]) {
		return 0, false
	}
	for _, ch := range b {
		if ch == '_' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// appendDouble appends d as Redis 7.0 replies a double: "%.17g", with
// "inf" and "-inf" for infinities.
func appendDouble(dst []byte, d float64) []byte {
	switch {
	case math.IsInf(d, 1):
		return append(dst, "inf"...)
	case math.IsInf(d, -1):
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, d, 'g', 17, 64)
}

// longDoublePrec is the mantissa size of the x87 80-bit long double, the
// type INCRBYFLOAT computes in on the platforms Redis is built for.
const longDoublePrec = 64

// parseLongDouble parses a value as INCRBYFLOAT does (string2ld).
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= 5*1024 || isSpace(b[0]) {
		return nil, false
	}
	for _, ch := range b {
		if ch == '_' {
			return nil, false
		}
	}
	if inf, neg := isInfWord(b); inf {
		return new(big.Float).SetPrec(longDoublePrec).SetInf(neg), true
	}
	f, _, err := new(big.Float).SetPrec(longDoublePrec).Parse(string(b), 0)
	if err != nil {
		return nil, false
	}
	// strtold reports overflow and underflow as errors.
	if e := f.MantExp(nil); f.Sign() != 0 && (e > 16384 || e < -16444) {
		return nil, false
	}
	return f, true
}

// incrLongDouble adds incr to cur in long double precision and formats the
// sum as INCRBYFLOAT stores it ("%.17Lf" without trailing zeros). It
// reports false when the sum is not finite.
func incrLongDouble(cur, incr *big.Float) ([]byte, bool) {
	if cur.IsInf() || incr.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(longDoublePrec).Add(cur, incr)
	// The largest finite long double has a binary exponent of 16384.
	if sum.MantExp(nil) > 16384 {
		return nil, false
	}
	out := sum.Append(nil, 'f', 17)
	if i := len(out) - 1; i > 0 {
		for out[i] == '0' {
			i--
		}
		if out[i] == '.' {
			i--
		}
		out = out[:i+1]
	}
	if string(out) == "-0" {
		out = []byte("0")
	}
	return out, true
}

func parseLongDoubleZero() *big.Float { return new(big.Float).SetPrec(longDoublePrec) }

// isInfWord reports whether b is an infinity as strtod spells it: "inf" or
// "infinity" in any case, optionally signed.
func isInfWord(b []byte) (inf, neg bool) {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	return equalFold(b, "inf") || equalFold(b, "infinity"), neg
}
