package rdb

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors. Errors returned by this package wrap one of these with
// context; test for them with errors.Is.
var (
	// ErrCorrupt reports data that is not a valid RDB: a bad header, an
	// unknown opcode or encoding, or a container whose header disagrees with
	// its contents.
	ErrCorrupt = errors.New("rdb: corrupt data")

	// ErrTruncated reports that the input ended before the RDB did. It wraps
	// both ErrCorrupt and io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("%w: unexpected end of input (%w)", ErrCorrupt, io.ErrUnexpectedEOF)

	// ErrChecksum reports a stored CRC-64 that does not match the data.
	ErrChecksum = errors.New("rdb: checksum mismatch")

	// ErrVersion reports an RDB version this package does not handle.
	ErrVersion = errors.New("rdb: unsupported RDB version")

	// ErrTooLarge reports a length or element count above
	// ReaderOptions.MaxLen.
	ErrTooLarge = errors.New("rdb: length exceeds limit")

	// ErrUnsupportedType reports a value type that Entry cannot represent:
	// streams, module values and hashes with field expiry. Such errors are
	// *UnsupportedTypeError values.
	ErrUnsupportedType = errors.New("rdb: unsupported value type")

	// ErrInvalidEntry reports an Entry the Writer cannot encode.
	ErrInvalidEntry = errors.New("rdb: invalid entry")
)

// UnsupportedTypeError is returned by Reader.Next for a key whose value type
// cannot be represented by Entry. It matches ErrUnsupportedType with
// errors.Is.
//
// When Skipped is true the value was consumed and the Reader is still
// usable: the next call to Next continues with the following key. When
// Skipped is false the Reader could not find the end of the value and every
// later call to Next returns the same error.
type UnsupportedTypeError struct {
	DB      int
	Key     []byte // a copy, safe to keep
	Type    byte   // RDB type byte
	Skipped bool
}

// Error names the key and the value type.
func (e *UnsupportedTypeError) Error() string {
	s := fmt.Sprintf("rdb: unsupported value type %s (%d) for key %q in db %d", TypeName(e.Type), e.Type, e.Key, e.DB)
	if !e.Skipped {
		s += " (cannot skip; reader stopped)"
	}
	return s
}

// Is makes errors.Is(err, ErrUnsupportedType) true.
func (e *UnsupportedTypeError) Is(target error) bool { return target == ErrUnsupportedType }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
