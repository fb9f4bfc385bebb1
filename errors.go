package psync

import "errors"

// Sentinel errors. Every error psync returns for bad input or a failed link
// wraps one of these, so callers can test with errors.Is.
var (
	// ErrProtocol: the peer sent bytes that are not valid RESP or not a valid
	// replication command or reply.
	ErrProtocol = errors.New("psync: protocol error")
	// ErrTooLarge: a line, bulk string, array or snapshot is larger than the
	// configured limit. It also wraps ErrProtocol.
	ErrTooLarge = errors.New("psync: size over limit")
	// ErrBadReplID: a replication ID is not 40 hexadecimal characters.
	ErrBadReplID = errors.New("psync: bad replication id")
	// ErrBadOffset: an offset is not a decimal number in range.
	ErrBadOffset = errors.New("psync: bad offset")
	// ErrAuth: the master refused the replica's credentials, or a replica
	// tried to replicate without authenticating.
	ErrAuth = errors.New("psync: authentication failed")
	// ErrUnexpectedReply: the master answered something the replica cannot act
	// on (an unknown reply, or an error such as -ERR).
	ErrUnexpectedReply = errors.New("psync: unexpected reply")
	// ErrSnapshotTruncated: the link ended before the whole snapshot arrived.
	ErrSnapshotTruncated = errors.New("psync: snapshot truncated")
	// ErrEOFMark: a diskless snapshot's end mark is malformed.
	ErrEOFMark = errors.New("psync: bad snapshot EOF mark")
	// ErrSnapshotLength: a snapshot did not have the length its header
	// announced, or the loader did not consume it.
	ErrSnapshotLength = errors.New("psync: snapshot length mismatch")
	// ErrTimeout: the peer was silent for longer than the configured timeout.
	ErrTimeout = errors.New("psync: link timeout")
	// ErrReplicaTooFar: a replica's unsent data exceeded the configured limit,
	// or the bytes it needs left the backlog.
	ErrReplicaTooFar = errors.New("psync: replica too far behind")
	// ErrNotInBacklog: the backlog no longer (or not yet) holds the requested
	// offset; the caller must fall back to a full resync.
	ErrNotInBacklog = errors.New("psync: offset not in backlog")
	// ErrApply: the host's Applier refused a command of the stream.
	ErrApply = errors.New("psync: apply failed")
	// ErrLoad: the host's Loader failed to load a snapshot; the old dataset
	// was kept.
	ErrLoad = errors.New("psync: snapshot load failed")
	// ErrClosed: the Master or Replica was closed.
	ErrClosed = errors.New("psync: closed")
)
