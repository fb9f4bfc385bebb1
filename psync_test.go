package psync_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readers returns the ways the command reader tests feed an input: whole,
// one byte at a time into a tiny buffer (forcing growth and compaction),
// and in random chunks.
func readers(data []byte) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"chunks":   func() io.Reader { return newChunkReader(data, 42, 11) },
	}
}

func newReader(name string, rd io.Reader, lim psync.Limits, inline bool) *psync.CommandReader {
	if name == "one-byte" {
		return psync.NewCommandReaderSize(rd, lim, inline, 4)
	}
	return psync.NewCommandReader(rd, lim, inline)
}

func TestCommandReaderValid(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	for _, tc := range []struct {
		name   string
		inline bool
		parts  []string   // the input, one element per command
		want   [][]string // the args of each command
	}{
		{"set", false, []string{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"}, [][]string{{"SET", "k", "value"}}},
		{"pipeline", false,
			[]string{"*1\r\n$4\r\nPING\r\n", "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"},
			[][]string{{"PING"}, {"SELECT", "0"}, {"SET", "a", "b"}}},
		{"empty arrays", false, []string{"*0\r\n", "*-1\r\n", "*1\r\n$4\r\nPING\r\n"}, [][]string{{}, {}, {"PING"}}},
		{"empty bulk", false, []string{"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"}, [][]string{{"ECHO", ""}}},
		{"binary bulk", false, []string{"*2\r\n$4\r\nECHO\r\n$6\r\n\r\n*1\x00\n\r\n"}, [][]string{{"ECHO", "\r\n*1\x00\n"}}},
		{"big bulk", false, []string{"*2\r\n$3\r\nSET\r\n$100000\r\n" + big + "\r\n", "*0\r\n"}, [][]string{{"SET", big}, {}}},
		{"inline", true, []string{"PING\r\n", "REPLCONF capa eof capa psync2\r\n", "PSYNC ? -1\r\n"},
			[][]string{{"PING"}, {"REPLCONF", "capa", "eof", "capa", "psync2"}, {"PSYNC", "?", "-1"}}},
		{"inline LF and spaces", true, []string{"  SET \t a   b \n", "PING\n"}, [][]string{{"SET", "a", "b"}, {"PING"}}},
		{"inline empty lines", true, []string{"\r\n", "\n", "PING\r\n"}, [][]string{{}, {}, {"PING"}}},
		{"inline and arrays mixed", true, []string{"PING\r\n", "*1\r\n$4\r\nPING\r\n", "QUIT\r\n"}, [][]string{{"PING"}, {"PING"}, {"QUIT"}}},
	} {
		data := []byte(strings.Join(tc.parts, ""))
		for rname, mk := range readers(data) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				cr := newReader(rname, mk(), psync.Limits{}, tc.inline)
				var consumed int64
				for i, part := range tc.parts {
					cmd, err := cr.ReadCommand()
					require.NoError(t, err, "command %d", i)
					assert.Equal(t, tc.want[i], argStrings(cmd.Args), "command %d", i)
					assert.Equal(t, part, string(cmd.Raw), "Raw of command %d", i)
					consumed += int64(len(part))
					assert.Equal(t, consumed, cr.Consumed())
					if len(tc.want[i]) > 0 {
						assert.True(t, cmd.Is(tc.want[i][0]))
						assert.True(t, cmd.Is(strings.ToLower(tc.want[i][0])))
						assert.Equal(t, strings.ToUpper(tc.want[i][0]), cmd.Name())
					} else {
						assert.Equal(t, "", cmd.Name())
						assert.False(t, cmd.Is(""))
					}
				}
				_, err := cr.ReadCommand()
				assert.Equal(t, io.EOF, err)
				assert.Empty(t, cr.Buffered())
				assert.Equal(t, int64(len(data)), cr.Consumed())
			})
		}
	}
}

// TestCommandReaderEverySplit splits a pipeline in two at every byte.
func TestCommandReaderEverySplit(t *testing.T) {
	parts := []string{"*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n", "*0\r\n", "*2\r\n$2\r\nab\r\n$0\r\n\r\n", "PING\r\n", "*1\r\n$3\r\nx\ry\r\n"}
	data := []byte(strings.Join(parts, ""))
	for i := 0; i <= len(data); i++ {
		rd := io.MultiReader(bytes.NewReader(data[:i]), bytes.NewReader(data[i:]))
		cr := psync.NewCommandReaderSize(rd, psync.Limits{}, true, 16)
		for j, part := range parts {
			cmd, err := cr.ReadCommand()
			require.NoError(t, err, "split at %d, command %d", i, j)
			require.Equal(t, part, string(cmd.Raw), "split at %d, command %d", i, j)
		}
		_, err := cr.ReadCommand()
		require.Equal(t, io.EOF, err)
	}
}

func TestCommandReaderBuffered(t *testing.T) {
	psync := psync.AppendCommandString(nil, "PSYNC", "?", "-1")
	after := []byte("*1\r\n$4\r\nPING\r\n+extra bytes")
	data := append(append([]byte(nil), psync...), after...)
	cr := newReader("whole", bytes.NewReader(data), limitsZero, false)
	cmd, err := cr.ReadCommand()
	require.NoError(t, err)
	assert.Equal(t, string(psync), string(cmd.Raw))
	assert.Equal(t, string(after), string(cr.Buffered()), "what the host must pass on")
	assert.EqualValues(t, len(psync), cr.Consumed())
}

// TestCommandReaderRawDoesNotAliasNextCommand: appending to a command's Raw
// or Args must not overwrite the bytes of the commands after it.
func TestCommandReaderRawDoesNotAliasNextCommand(t *testing.T) {
	for _, inline := range []bool{false, true} {
		data := "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
		if inline {
			data = "PING\r\nECHO\r\n"
		}
		cr := psync.NewCommandReader(strings.NewReader(data), psync.Limits{}, inline)
		first, err := cr.ReadCommand()
		require.NoError(t, err)
		_ = append(first.Raw, "XXXXXXXX"...)
		_ = append(first.Args[0], "XXXXXXXX"...)
		second, err := cr.ReadCommand()
		require.NoError(t, err)
		assert.Equal(t, data[len(first.Raw):], string(second.Raw), "inline=%v", inline)
	}
}

var limitsZero = psync.Limits{}

func TestCommandReaderMalformed(t *testing.T) {
	small := psync.Limits{MaxBulk: 1000, MaxArgs: 100, MaxInline: 200}
	for _, tc := range []struct {
		name     string
		in       string
		inline   bool
		want     error // ErrProtocol, ErrTooLarge or io.ErrUnexpectedEOF
		commands int   // good commands before the error
	}{
		{"non-digit array length", "*x\r\n", false, psync.ErrProtocol, 0},
		{"empty array length", "*\r\n", false, psync.ErrProtocol, 0},
		{"plus in array length", "*+1\r\n$1\r\na\r\n", false, psync.ErrProtocol, 0},
		{"array length over 19 chars", "*00000000000000000001\r\n$1\r\na\r\n", false, psync.ErrProtocol, 0},
		{"array missing CR", "*1\n$1\r\na\r\n", false, psync.ErrProtocol, 0},
		{"array CR without LF", "*1\rx\n", false, psync.ErrProtocol, 0},
		{"bulk non-digit", "*1\r\n$x\r\n", false, psync.ErrProtocol, 0},
		{"bulk empty length", "*1\r\n$\r\nab\r\n", false, psync.ErrProtocol, 0},
		{"negative bulk", "*1\r\n$-1\r\n", false, psync.ErrProtocol, 0},
		{"negative bulk -5", "*1\r\n$-5\r\nabc\r\n", false, psync.ErrProtocol, 0},
		{"not a bulk", "*1\r\n+OK\r\n", false, psync.ErrProtocol, 0},
		{"bulk header missing CR", "*1\r\n$3\nabc\r\n", false, psync.ErrProtocol, 0},
		{"bulk longer than announced", "*1\r\n$3\r\nabcde\r\n", false, psync.ErrProtocol, 0},
		{"bulk missing CR", "*1\r\n$3\r\nabc\n\n", false, psync.ErrProtocol, 0},
		{"after a good command", "*1\r\n$1\r\na\r\n*x\r\n", false, psync.ErrProtocol, 1},
		{"inline rejected", "PING\r\n", false, psync.ErrProtocol, 0},
		{"bulk at top level", "$4\r\nPING\r\n", false, psync.ErrProtocol, 0},
		{"bulk over MaxBulk", "*1\r\n$1001\r\n", false, psync.ErrTooLarge, 0},
		{"array over MaxArgs", "*101\r\n", false, psync.ErrTooLarge, 0},
		{"endless array header", "*1" + strings.Repeat("1", 100), false, psync.ErrTooLarge, 0},
		{"endless bulk header", "*1\r\n$1" + strings.Repeat("0", 100), false, psync.ErrTooLarge, 0},
		{"endless inline line", strings.Repeat("A", 300), true, psync.ErrTooLarge, 0},
		{"truncated array header", "*1\r", false, io.ErrUnexpectedEOF, 0},
		{"truncated bulk header", "*1\r\n$3", false, io.ErrUnexpectedEOF, 0},
		{"truncated bulk", "*1\r\n$3\r\nab", false, io.ErrUnexpectedEOF, 0},
		{"truncated bulk CRLF", "*1\r\n$3\r\nabc\r", false, io.ErrUnexpectedEOF, 0},
		{"truncated args", "*2\r\n$1\r\na\r\n", false, io.ErrUnexpectedEOF, 0},
		{"truncated inline", "PING", true, io.ErrUnexpectedEOF, 0},
		{"truncated after good", "*0\r\n*1", false, io.ErrUnexpectedEOF, 1},
	} {
		for rname, mk := range readers([]byte(tc.in)) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				cr := newReader(rname, mk(), small, tc.inline)
				for i := 0; i < tc.commands; i++ {
					_, err := cr.ReadCommand()
					require.NoError(t, err)
				}
				_, err := cr.ReadCommand()
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.want)
				if tc.want == psync.ErrTooLarge {
					assert.ErrorIs(t, err, psync.ErrProtocol, "ErrTooLarge also wraps ErrProtocol")
				}
				if tc.want == io.ErrUnexpectedEOF {
					assert.NotErrorIs(t, err, psync.ErrProtocol)
				}
			})
		}
	}
}

// TestCommandReaderHugeAnnouncedLength: a peer announcing huge lengths makes
// the reader buffer only what actually arrives.
func TestCommandReaderHugeAnnouncedLength(t *testing.T) {
	for _, in := range []string{
		"*1\r\n$400000000\r\n" + strings.Repeat("x", 1000),
		"*1000000\r\n" + strings.Repeat("$1\r\na\r\n", 100),
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cr := psync.NewCommandReader(strings.NewReader(in), psync.Limits{}, false)
		_, err := cr.ReadCommand()
		runtime.ReadMemStats(&after)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(2<<20), "allocated for %.30q", in)
	}
}

func TestParseSyncRequest(t *testing.T) {
	args := func(s ...string) [][]byte {
		b := make([][]byte, len(s))
		for i, a := range s {
			b[i] = []byte(a)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		args [][]byte
		want psync.SyncRequest
		errs []error
	}{
		{"sync", args("SYNC"), psync.SyncRequest{Legacy: true, Offset: -1}, nil},
		{"sync lower case", args("sync"), psync.SyncRequest{Legacy: true, Offset: -1}, nil},
		{"psync ?", args("PSYNC", "?", "-1"), psync.SyncRequest{Offset: -1}, nil},
		{"psync id", args("psync", string(idA), "1001"), psync.SyncRequest{ReplID: idA, Offset: 1001}, nil},
		{"psync upper-case id", args("PSYNC", strings.ToUpper(string(idA)), "0"), psync.SyncRequest{ReplID: idA, Offset: 0}, nil},
		{"psync max offset", args("PSYNC", string(idA), strconv.FormatInt(psync.MaxOffset, 10)), psync.SyncRequest{ReplID: idA, Offset: psync.MaxOffset}, nil},
		// As Redis (getLongLongFromObject), a negative offset parses; Decide
		// then answers with a full resync.
		{"psync negative offset", args("PSYNC", string(idA), "-5"), psync.SyncRequest{ReplID: idA, Offset: -5}, nil},
		{"bad id", args("PSYNC", "abc", "1"), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadReplID}},
		{"bad id chars", args("PSYNC", strings.Repeat("z", 40), "1"), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadReplID}},
		{"bad offset", args("PSYNC", string(idA), "x"), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadOffset}},
		{"empty offset", args("PSYNC", "?", ""), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadOffset}},
		{"offset over max", args("PSYNC", string(idA), strconv.FormatInt(psync.MaxOffset+1, 10)), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadOffset}},
		{"offset overflow", args("PSYNC", string(idA), "99999999999999999999"), psync.SyncRequest{}, []error{psync.ErrProtocol, psync.ErrBadOffset}},
		{"psync one arg", args("PSYNC", "?"), psync.SyncRequest{}, []error{psync.ErrProtocol}},
		{"psync no args", args("PSYNC"), psync.SyncRequest{}, []error{psync.ErrProtocol}},
		{"psync four args", args("PSYNC", "?", "-1", "x"), psync.SyncRequest{}, []error{psync.ErrProtocol}},
		{"sync with args", args("SYNC", "x"), psync.SyncRequest{}, []error{psync.ErrProtocol}},
		{"other command", args("SET", "a", "b"), psync.SyncRequest{}, []error{psync.ErrProtocol}},
		{"empty", nil, psync.SyncRequest{}, []error{psync.ErrProtocol}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := psync.ParseSyncRequest(tc.args)
			if tc.errs != nil {
				for _, e := range tc.errs {
					assert.ErrorIs(t, err, e)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, req)
		})
	}
}

func TestReplicaInfoReplconf(t *testing.T) {
	args := func(s ...string) [][]byte {
		b := make([][]byte, len(s))
		for i, a := range s {
			b[i] = []byte(a)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		args [][]byte
		want psync.ReplicaInfo
		ok   bool
	}{
		{"no options", args("REPLCONF"), psync.ReplicaInfo{}, true},
		{"listening-port", args("REPLCONF", "listening-port", "6380"), psync.ReplicaInfo{ListeningPort: 6380}, true},
		{"port 0 and 65535", args("REPLCONF", "listening-port", "0", "listening-port", "65535"), psync.ReplicaInfo{ListeningPort: 65535}, true},
		{"ip-address", args("REPLCONF", "ip-address", "10.0.0.7"), psync.ReplicaInfo{IPAddress: "10.0.0.7"}, true},
		{"capa eof psync2", args("REPLCONF", "capa", "eof", "capa", "psync2"), psync.ReplicaInfo{CapaEOF: true, CapaPSYNC2: true}, true},
		{"case-insensitive", args("replconf", "CAPA", "EOF", "Listening-Port", "1"), psync.ReplicaInfo{CapaEOF: true, ListeningPort: 1}, true},
		{"unknown capa ignored", args("REPLCONF", "capa", "future", "capa", "psync2"), psync.ReplicaInfo{CapaPSYNC2: true}, true},
		{"unknown option ignored", args("REPLCONF", "whatever", "x"), psync.ReplicaInfo{}, true},
		{"rdb-only 1", args("REPLCONF", "rdb-only", "1"), psync.ReplicaInfo{RDBOnly: true}, true},
		{"rdb-only 0", args("REPLCONF", "rdb-only", "0"), psync.ReplicaInfo{}, true},
		{"bad port", args("REPLCONF", "listening-port", "abc"), psync.ReplicaInfo{}, false},
		{"port too big", args("REPLCONF", "listening-port", "65536"), psync.ReplicaInfo{}, false},
		{"negative port", args("REPLCONF", "listening-port", "-1"), psync.ReplicaInfo{}, false},
		{"ip-address too long", args("REPLCONF", "ip-address", strings.Repeat("a", 256)), psync.ReplicaInfo{}, false},
		{"odd arguments", args("REPLCONF", "capa"), psync.ReplicaInfo{}, false},
		{"three options", args("REPLCONF", "capa", "eof", "capa"), psync.ReplicaInfo{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var info psync.ReplicaInfo
			err := info.Replconf(tc.args)
			if !tc.ok {
				assert.ErrorIs(t, err, psync.ErrProtocol)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, info)
		})
	}

	// Successive REPLCONFs accumulate, as a handshake sends them.
	var info psync.ReplicaInfo
	require.NoError(t, info.Replconf(args("REPLCONF", "listening-port", "6380")))
	require.NoError(t, info.Replconf(args("REPLCONF", "capa", "eof")))
	require.NoError(t, info.Replconf(args("REPLCONF", "capa", "psync2")))
	assert.Equal(t, psync.ReplicaInfo{ListeningPort: 6380, CapaEOF: true, CapaPSYNC2: true}, info)
}

// TestDecide covers every branch of Redis 7's
// masterTryPartialResynchronization.
func TestDecide(t *testing.T) {
	// Master at offset 1000, backlog holding [800, 1000]; promoted from the
	// history idB, which ended at 899 (the next byte would have been 900).
	st := psync.MasterState{ReplID: idA, ReplID2: idB, SecondOffset: 900, Offset: 1000, BacklogFirst: 800, HasBacklog: true}
	fresh := psync.MasterState{ReplID: idA, ReplID2: psync.NoReplID, SecondOffset: -1, Offset: 1000, BacklogFirst: 1001, HasBacklog: true}
	noBacklog := st
	noBacklog.HasBacklog = false
	for _, tc := range []struct {
		name    string
		st      psync.MasterState
		req     psync.SyncRequest
		partial bool
	}{
		{"legacy SYNC", st, psync.SyncRequest{Legacy: true, Offset: -1}, false},
		{"legacy SYNC even with a matching id", st, psync.SyncRequest{Legacy: true, ReplID: idA, Offset: 900}, false},
		{"PSYNC ? -1", st, psync.SyncRequest{Offset: -1}, false},
		{"PSYNC ? with an offset in the backlog", st, psync.SyncRequest{Offset: 900}, false},
		{"replid inside the backlog", st, psync.SyncRequest{ReplID: idA, Offset: 900}, true},
		{"replid at the backlog's first byte", st, psync.SyncRequest{ReplID: idA, Offset: 800}, true},
		{"replid at the master offset", st, psync.SyncRequest{ReplID: idA, Offset: 1000}, true},
		{"replid at offset+1: nothing to send", st, psync.SyncRequest{ReplID: idA, Offset: 1001}, true},
		{"replid before the backlog", st, psync.SyncRequest{ReplID: idA, Offset: 799}, false},
		{"replid ahead of offset+1", st, psync.SyncRequest{ReplID: idA, Offset: 1002}, false},
		{"replid negative offset", st, psync.SyncRequest{ReplID: idA, Offset: -5}, false},
		{"replid2 inside the backlog", st, psync.SyncRequest{ReplID: idB, Offset: 850}, true},
		{"replid2 at SecondOffset", st, psync.SyncRequest{ReplID: idB, Offset: 900}, true},
		{"replid2 at SecondOffset+1", st, psync.SyncRequest{ReplID: idB, Offset: 901}, false},
		{"replid2 before the backlog", st, psync.SyncRequest{ReplID: idB, Offset: 799}, false},
		{"unknown id", st, psync.SyncRequest{ReplID: idC, Offset: 900}, false},
		{"no backlog", noBacklog, psync.SyncRequest{ReplID: idA, Offset: 900}, false},
		{"no backlog, replid2", noBacklog, psync.SyncRequest{ReplID: idB, Offset: 850}, false},
		{"empty backlog at offset+1", fresh, psync.SyncRequest{ReplID: idA, Offset: 1001}, true},
		{"empty backlog at offset", fresh, psync.SyncRequest{ReplID: idA, Offset: 1000}, false},
		{"forty zeros is not a history", fresh, psync.SyncRequest{ReplID: psync.NoReplID, Offset: -1}, false},
		{"forty zeros at offset+1", fresh, psync.SyncRequest{ReplID: psync.NoReplID, Offset: 1001}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := psync.Decide(tc.st, tc.req)
			assert.Equal(t, tc.partial, d.Partial, "reason: %s", d.Reason)
			assert.NotEmpty(t, d.Reason)
		})
	}

	// From the wire: an upper-case id continues as well.
	req, err := psync.ParseSyncRequest([][]byte{[]byte("PSYNC"), []byte(strings.ToUpper(string(idA))), []byte("900")})
	require.NoError(t, err)
	assert.True(t, psync.Decide(st, req).Partial)
}

func TestParsePSYNCReply(t *testing.T) {
	for _, tc := range []struct {
		line string
		want psync.PSYNCReply
		errs []error
	}{
		{"+FULLRESYNC " + string(idA) + " 1000", psync.PSYNCReply{Full: true, ID: idA, Offset: 1000}, nil},
		{"+FULLRESYNC " + strings.ToUpper(string(idA)) + " 0", psync.PSYNCReply{Full: true, ID: idA, Offset: 0}, nil},
		{"+FULLRESYNC abc 1000", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply, psync.ErrBadReplID}},
		{"+FULLRESYNC " + string(idA) + " -1", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply, psync.ErrBadOffset}},
		{"+FULLRESYNC " + string(idA) + " x", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply, psync.ErrBadOffset}},
		{"+FULLRESYNC " + string(idA), psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"+FULLRESYNC", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"+FULLRESYNC " + string(idA) + " 1 2", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"+CONTINUE", psync.PSYNCReply{}, nil},
		{"+CONTINUE " + string(idB), psync.PSYNCReply{ID: idB}, nil},
		{"+CONTINUE " + string(idB) + " ", psync.PSYNCReply{ID: idB}, nil},
		{"+CONTINUE abc", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply, psync.ErrBadReplID}},
		{"-NOAUTH Authentication required.", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply, psync.ErrAuth}},
		{"-NOPERM this user has no permissions", psync.PSYNCReply{}, []error{psync.ErrAuth}},
		{"-WRONGPASS invalid username-password pair", psync.PSYNCReply{}, []error{psync.ErrAuth}},
		{"-ERR unknown command 'PSYNC'", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"-LOADING Redis is loading the dataset in memory", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"-NOMASTERLINK Can't SYNC while not connected with my master", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"+OK", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{"garbage \x00\xff", psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
		{strings.Repeat("x", 10000), psync.PSYNCReply{}, []error{psync.ErrUnexpectedReply}},
	} {
		t.Run(fmt.Sprintf("%.40s", tc.line), func(t *testing.T) {
			got, err := psync.ParsePSYNCReply([]byte(tc.line))
			if tc.errs != nil {
				for _, e := range tc.errs {
					assert.ErrorIs(t, err, e)
				}
				assert.NotErrorIs(t, err, psync.ErrProtocol)
				assert.Less(t, len(err.Error()), 400, "a long reply is truncated in the error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	// What the master writes, the replica parses.
	got, err := psync.ParsePSYNCReply(bytes.TrimSuffix(psync.AppendFullResync(nil, idA, 12345), []byte("\r\n")))
	require.NoError(t, err)
	assert.Equal(t, psync.PSYNCReply{Full: true, ID: idA, Offset: 12345}, got)
	got, err = psync.ParsePSYNCReply(bytes.TrimSuffix(psync.AppendContinue(nil, idB), []byte("\r\n")))
	require.NoError(t, err)
	assert.Equal(t, psync.PSYNCReply{ID: idB}, got)
	assert.Equal(t, "+CONTINUE\r\n", string(psync.AppendContinue(nil, "")))
}

// loopReader serves data over and over.
type loopReader struct {
	data []byte
	pos  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.pos:])
	l.pos += n
	if l.pos == len(l.data) {
		l.pos = 0
	}
	return n, nil
}

// BenchmarkReadCommand parses a stream of 144-byte SET commands.
func BenchmarkReadCommand(b *testing.B) {
	var stream []byte
	val := strings.Repeat("v", 100)
	for i := 0; len(stream) < 8<<20; i++ {
		stream = psync.AppendCommandString(stream, "SET", fmt.Sprintf("key:%012d", i), val)
	}
	cr := psync.NewCommandReader(&loopReader{data: stream}, psync.Limits{}, false)
	b.SetBytes(144)
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := cr.ReadCommand()
		if err != nil || len(cmd.Raw) != 144 {
			b.Fatalf("ReadCommand: %d bytes, %v", len(cmd.Raw), err)
		}
	}
}
