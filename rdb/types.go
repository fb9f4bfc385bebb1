package rdb

// RDB value type bytes (rdb.h).
const (
	typeString          = 0
	typeListLinked      = 1
	typeSet             = 2
	typeZSet            = 3
	typeHash            = 4
	typeZSet2           = 5
	typeModulePreGA     = 6
	typeModule2         = 7
	typeHashZipmap      = 9
	typeListZiplist     = 10
	typeSetIntset       = 11
	typeZSetZiplist     = 12
	typeHashZiplist     = 13
	typeListQuicklist   = 14
	typeStreamListpacks = 15
	typeHashListpack    = 16
	typeZSetListpack    = 17
	typeListQuicklist2  = 18
	typeStreamLP2       = 19
	typeSetListpack     = 20
	typeStreamLP3       = 21
	typeHashMetaPreGA   = 22
	typeHashLPExPreGA   = 23
	typeHashMeta        = 24
	typeHashLPEx        = 25
)

// Opcodes (rdb.h).
const (
	opSlotInfo    = 0xF4
	opFunction2   = 0xF5
	opFunctionOld = 0xF6
	opModuleAux   = 0xF7
	opIdle        = 0xF8
	opFreq        = 0xF9
	opAux         = 0xFA
	opResizeDB    = 0xFB
	opExpireMs    = 0xFC
	opExpireSec   = 0xFD
	opSelectDB    = 0xFE
	opEOF         = 0xFF
)

// Quicklist 2 node containers.
const (
	containerPlain  = 1
	containerPacked = 2
)

// Module value opcodes.
const (
	moduleOpEOF    = 0
	moduleOpSInt   = 1
	moduleOpUInt   = 2
	moduleOpFloat  = 3
	moduleOpDouble = 4
	moduleOpString = 5
)

// TypeName returns a short name for an RDB value type byte, such as
// "string", "hash-listpack" or "stream".
func TypeName(t byte) string {
	switch t {
	case typeString:
		return "string"
	case typeListLinked:
		return "list"
	case typeSet:
		return "set"
	case typeZSet:
		return "zset"
	case typeHash:
		return "hash"
	case typeZSet2:
		return "zset2"
	case typeModulePreGA, typeModule2:
		return "module"
	case typeHashZipmap:
		return "hash-zipmap"
	case typeListZiplist:
		return "list-ziplist"
	case typeSetIntset:
		return "set-intset"
	case typeZSetZiplist:
		return "zset-ziplist"
	case typeHashZiplist:
		return "hash-ziplist"
	case typeListQuicklist:
		return "list-quicklist"
	case typeStreamListpacks, typeStreamLP2, typeStreamLP3:
		return "stream"
	case typeHashListpack:
		return "hash-listpack"
	case typeZSetListpack:
		return "zset-listpack"
	case typeListQuicklist2:
		return "list-quicklist2"
	case typeSetListpack:
		return "set-listpack"
	case typeHashMetaPreGA, typeHashMeta:
		return "hash-with-field-ttl"
	case typeHashLPExPreGA, typeHashLPEx:
		return "hash-listpack-with-field-ttl"
	}
	return "unknown"
}
