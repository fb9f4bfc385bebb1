package kv

import (
	"strings"

	"github.com/psyncio/psync"
)

// Error replies, byte for byte as Redis 7.0 sends them.
const (
	errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt    = "ERR value is not an integer or out of range"
	errNotFloat  = "ERR value is not a valid float"
	errSyntax    = "ERR syntax error"
	errOverflow  = "ERR increment or decrement would overflow"
	errReadOnly  = "READONLY You can't write against a read only replica."
	errPositive  = "ERR value is out of range, must be positive"
)

// command describes one command of the table.
type command struct {
	name      string // lower case, as in error messages
	arity     int    // argc including the name; negative means at least -arity
	write     bool   // may change the dataset
	txControl bool   // MULTI, EXEC, DISCARD: never queued
	fn        func(x *execCtx)
}

var commandTable = map[string]*command{}

func register(name string, arity int, write bool, fn func(x *execCtx)) *command {
	c := &command{name: name, arity: arity, write: write, fn: fn}
	commandTable[name] = c
	return c
}

func init() {
	// Connection and keyspace.
	register("ping", -1, false, cmdPing)
	register("echo", 2, false, cmdEcho)
	register("select", 2, false, cmdSelect)
	register("dbsize", 1, false, cmdDBSize)
	register("keys", 2, false, cmdKeys)
	register("scan", -2, false, cmdScan)
	register("type", 2, false, cmdType)
	register("del", -2, true, cmdDel)
	register("unlink", -2, true, cmdDel)
	register("exists", -2, false, cmdExists)
	register("expire", -3, true, cmdExpire)
	register("pexpire", -3, true, cmdExpire)
	register("expireat", -3, true, cmdExpire)
	register("pexpireat", -3, true, cmdExpire)
	register("persist", 2, true, cmdPersist)
	register("ttl", 2, false, cmdTTL)
	register("pttl", 2, false, cmdTTL)
	register("flushdb", -1, true, cmdFlushDB)
	register("flushall", -1, true, cmdFlushAll)
	// Strings.
	register("set", -3, true, cmdSet)
	register("setex", 4, true, cmdSetEx)
	register("psetex", 4, true, cmdSetEx)
	register("setnx", 3, true, cmdSetNX)
	register("get", 2, false, cmdGet)
	register("getex", -2, true, cmdGetEx)
	register("getdel", 2, true, cmdGetDel)
	register("mset", -3, true, cmdMSet)
	register("mget", -2, false, cmdMGet)
	register("incr", 2, true, cmdIncr)
	register("decr", 2, true, cmdIncr)
	register("incrby", 3, true, cmdIncr)
	register("decrby", 3, true, cmdIncr)
	register("incrbyfloat", 3, true, cmdIncrByFloat)
	register("append", 3, true, cmdAppend)
	register("strlen", 2, false, cmdStrlen)
	// Hashes.
	register("hset", -4, true, cmdHSet)
	register("hmset", -4, true, cmdHSet)
	register("hget", 3, false, cmdHGet)
	register("hdel", -3, true, cmdHDel)
	register("hgetall", 2, false, cmdHGetAll)
	register("hlen", 2, false, cmdHLen)
	register("hincrby", 4, true, cmdHIncrBy)
	register("hmget", -3, false, cmdHMGet)
	register("hexists", 3, false, cmdHExists)
	// Lists.
	register("lpush", -3, true, cmdPush)
	register("rpush", -3, true, cmdPush)
	register("lpop", -2, true, cmdPop)
	register("rpop", -2, true, cmdPop)
	register("lrange", 4, false, cmdLRange)
	register("llen", 2, false, cmdLLen)
	// Sets.
	register("sadd", -3, true, cmdSAdd)
	register("srem", -3, true, cmdSRem)
	register("smembers", 2, false, cmdSMembers)
	register("scard", 2, false, cmdSCard)
	register("sismember", 3, false, cmdSIsMember)
	register("spop", -2, true, cmdSPop)
	// Sorted sets.
	register("zadd", -4, true, cmdZAdd)
	register("zincrby", 4, true, cmdZIncrBy)
	register("zrem", -3, true, cmdZRem)
	register("zrange", -4, false, cmdZRange)
	register("zscore", 3, false, cmdZScore)
	register("zcard", 2, false, cmdZCard)
	// Transactions.
	register("multi", 1, false, cmdMulti).txControl = true
	register("exec", 1, false, cmdExecTx).txControl = true
	register("discard", 1, false, cmdDiscard).txControl = true
}

// lookupCommand finds a command by name in any case, without allocating.
func lookupCommand(name []byte) *command {
	var buf [16]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return commandTable[string(buf[:len(name)])]
}

func arityOK(c *command, argc int) bool {
	if c.arity >= 0 {
		return argc == c.arity
	}
	return argc >= -c.arity
}

// unknownCommandError builds Redis 7.0's reply to an unknown command: the
// name and the first arguments, quoted, up to 128 bytes, with CR and LF
// turned into spaces.
func unknownCommandError(argv [][]byte) string {
	var args strings.Builder
	for _, a := range argv[1:] {
		if args.Len() >= 128 {
			break
		}
		room := 128 - args.Len()
		args.WriteByte('\'')
		args.Write(a[:min(len(a), room)])
		args.WriteString("' ")
	}
	name := argv[0][:min(len(argv[0]), 128)]
	msg := "ERR unknown command '" + string(name) + "', with args beginning with: " + args.String()
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// Reply helpers.

func (x *execCtx) ok()                 { x.out = psync.AppendSimpleString(x.out, "OK") }
func (x *execCtx) null()               { x.out = psync.AppendNull(x.out) }
func (x *execCtx) nullArray()          { x.out = psync.AppendArray(x.out, -1) }
func (x *execCtx) int(n int64)         { x.out = psync.AppendInt(x.out, n) }
func (x *execCtx) bulk(b []byte)       { x.out = psync.AppendBulk(x.out, b) }
func (x *execCtx) bulkString(s string) { x.out = psync.AppendBulkString(x.out, s) }
func (x *execCtx) array(n int)         { x.out = psync.AppendArray(x.out, n) }
func (x *execCtx) simple(s string)     { x.out = psync.AppendSimpleString(x.out, s) }
func (x *execCtx) double(d float64)    { x.bulk(appendDouble(nil, d)) }
func (x *execCtx) bulkOrNull(b []byte, ok bool) {
	if ok {
		x.bulk(b)
	} else {
		x.null()
	}
}

// argInt parses argument i as an integer, replying the error when invalid.
func (x *execCtx) argInt(i int) (int64, bool) {
	n, ok := parseInt(x.argv[i])
	if !ok {
		x.err(errNotInt)
	}
	return n, ok
}

// argCount parses an optional count argument (LPOP, SPOP): a non-negative
// integer.
func (x *execCtx) argCount(i int) (int64, bool) {
	n, ok := parseInt(x.argv[i])
	if !ok || n < 0 {
		x.err(errPositive)
		return 0, false
	}
	return n, true
}

// argIs reports whether argument i equals word, ignoring case.
func (x *execCtx) argIs(i int, word string) bool {
	return strings.EqualFold(string(x.argv[i]), word)
}

var (
	wordDEL       = []byte("DEL")
	wordSET       = []byte("SET")
	wordPXAT      = []byte("PXAT")
	wordPEXPIREAT = []byte("PEXPIREAT")
	wordPERSIST   = []byte("PERSIST")
	wordKEEPTTL   = []byte("KEEPTTL")
	wordSREM      = []byte("SREM")

	argvMULTI = [][]byte{[]byte("MULTI")}
	argvEXEC  = [][]byte{[]byte("EXEC")}
	rawMULTI  = psync.AppendCommand(nil, argvMULTI...)
	rawEXEC   = psync.AppendCommand(nil, argvEXEC...)
)
