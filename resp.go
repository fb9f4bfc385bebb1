package psync

import "strconv"

// This file holds the allocation-free RESP encoders. Each appends to dst and
// returns the extended slice, in the style of strconv.AppendInt, so a caller
// that reuses its buffer encodes without allocating.

// AppendCommand appends args as a RESP array of bulk strings, the form every
// command takes in the replication stream:
//
//	*<n>\r\n$<len>\r\n<arg>\r\n...
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendCommandString is AppendCommand for string arguments.
func AppendCommandString(dst []byte, args ...string) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}

// AppendArray appends an array header: *<n>\r\n. A negative n appends the
// null array *-1\r\n.
func AppendArray(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends b as a bulk string: $<len>\r\n<b>\r\n.
func AppendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNull appends the null bulk string $-1\r\n.
func AppendNull(dst []byte) []byte { return append(dst, '$', '-', '1', '\r', '\n') }

// AppendInt appends an integer reply: :<n>\r\n.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendSimpleString appends a simple string reply: +<s>\r\n. s must not
// contain CR or LF.
func AppendSimpleString(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply: -<msg>\r\n. By Redis convention msg
// starts with an upper-case code such as ERR, NOAUTH or WRONGTYPE. msg must
// not contain CR or LF.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}
