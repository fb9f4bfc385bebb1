// Package rdb reads and writes Redis RDB files, the snapshot format a Redis
// master sends a replica on a full resynchronization.
//
// Reader decodes a stream key by key without holding the file in memory;
// Writer encodes one that Redis 7.0 loads. Both keep a running CRC-64 (see
// CRC64) and check or write it at the end.
//
// # Reading
//
// Versions 1 to 12 are accepted (Redis 7.0 writes 10, 7.2 writes 11, 7.4
// writes 12). Every value is returned as an Entry of one of five kinds,
// whatever its encoding:
//
//   - strings (type 0): raw, integer-encoded (rendered as decimal text) and
//     LZF-compressed;
//   - lists: linked list (1), ziplist (10), quicklist of ziplists (14),
//     quicklist 2 with plain and listpack nodes (18);
//   - sets: hashtable (2), intset (11), listpack (20);
//   - sorted sets: text scores (3, including inf, -inf and nan), binary
//     scores (5), ziplist (12), listpack (17);
//   - hashes: hashtable (4), zipmap (9), ziplist (13), listpack (16).
//
// Opcodes AUX, SELECTDB, RESIZEDB, EXPIRETIME, EXPIRETIME_MS, IDLE, FREQ,
// FUNCTION2 (payloads kept, see Reader.Functions), MODULE_AUX (skipped) and
// SLOT_INFO (skipped) are understood. The pre-GA FUNCTION opcode is refused,
// as Redis 7.0 refuses it.
//
// Streams (15, 19, 21) and module values (7) are skipped and reported as an
// *UnsupportedTypeError (errors.Is ErrUnsupportedType) after which reading
// can continue, or silently skipped with ReaderOptions.SkipUnsupported.
// Pre-GA module values (6) and hashes with field expiry (22 to 25) cannot be
// skipped and stop the Reader.
//
// Every length and container header is checked against the data actually
// present; no allocation is sized by an untrusted number larger than
// ReaderOptions.MaxLen, and LZF output is bounded by the compressed input.
// Errors wrap ErrCorrupt, ErrTruncated, ErrChecksum, ErrVersion or
// ErrTooLarge.
//
// The Entry returned by Reader.Next and its slices are reused by the next
// call; use Entry.Clone to keep one.
//
// # Writing
//
// Writer emits version 10 by default: strings raw or integer-encoded (LZF
// with WriterOptions.Compress), lists as quicklist 2 with listpack nodes of
// at most 8 KiB (a larger element gets a node of its own, plain from 1 GiB,
// as Redis 7.0 does), sets as type 2, hashes as type 4, sorted sets as type 5, expiry as EXPIRETIME_MS, AUX fields as
// given, SELECTDB with RESIZEDB, and a correct checksum.
package rdb
