package psync_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRESPEncoders(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"command", psync.AppendCommand(nil, []byte("SET"), []byte("k"), []byte("v")), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"},
		{"command string", psync.AppendCommandString(nil, "PSYNC", "?", "-1"), "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"},
		{"command no args", psync.AppendCommand(nil), "*0\r\n"},
		{"command string no args", psync.AppendCommandString(nil), "*0\r\n"},
		{"command empty arg", psync.AppendCommandString(nil, "ECHO", ""), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"},
		{"command binary arg", psync.AppendCommand(nil, []byte("SET"), []byte("a\r\nb\x00")), "*2\r\n$3\r\nSET\r\n$5\r\na\r\nb\x00\r\n"},
		{"array", psync.AppendArray(nil, 12), "*12\r\n"},
		{"array zero", psync.AppendArray(nil, 0), "*0\r\n"},
		{"null array", psync.AppendArray(nil, -1), "*-1\r\n"},
		{"bulk", psync.AppendBulk(nil, []byte("hello")), "$5\r\nhello\r\n"},
		{"bulk empty", psync.AppendBulk(nil, nil), "$0\r\n\r\n"},
		{"bulk string", psync.AppendBulkString(nil, "hello world"), "$11\r\nhello world\r\n"},
		{"null", psync.AppendNull(nil), "$-1\r\n"},
		{"int", psync.AppendInt(nil, 42), ":42\r\n"},
		{"int zero", psync.AppendInt(nil, 0), ":0\r\n"},
		{"int negative", psync.AppendInt(nil, -9223372036854775808), ":-9223372036854775808\r\n"},
		{"simple", psync.AppendSimpleString(nil, "OK"), "+OK\r\n"},
		{"simple empty", psync.AppendSimpleString(nil, ""), "+\r\n"},
		{"error", psync.AppendError(nil, "NOAUTH Authentication required."), "-NOAUTH Authentication required.\r\n"},
		{"appends", psync.AppendInt(psync.AppendSimpleString([]byte("x"), "PONG"), 1), "x+PONG\r\n:1\r\n"},
		{"144-byte SET", psync.AppendCommandString(nil, "SET", "key:000000123456", string(bytes.Repeat([]byte("v"), 100))),
			"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000123456\r\n$100\r\n" + string(bytes.Repeat([]byte("v"), 100)) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(tc.got))
		})
	}
	assert.Len(t, psync.AppendCommandString(nil, "SET", "key:000000123456", string(bytes.Repeat([]byte("v"), 100))), 144)
}

func TestRESPEncodersDoNotAllocateWithRoom(t *testing.T) {
	buf := make([]byte, 0, 512)
	k, v := []byte("key:000000123456"), bytes.Repeat([]byte("v"), 100)
	allocs := testing.AllocsPerRun(100, func() {
		b := psync.AppendCommand(buf[:0], []byte("SET"), k, v)
		b = psync.AppendCommandString(b, "PING")
		b = psync.AppendInt(b, 12345)
		b = psync.AppendError(b, "ERR x")
		b = psync.AppendSimpleString(b, "OK")
		_ = psync.AppendNull(b)
	})
	assert.Zero(t, allocs)
}

// TestRESPEncodedCommandsReadBack: what the encoders write, the reader reads
// back with the same arguments and the same raw bytes.
func TestRESPEncodedCommandsReadBack(t *testing.T) {
	cmds := [][]string{{"SET", "k", "v"}, {"PING"}, {"SELECT", "15"}, {"SET", "bin\r\n\x00", ""}, {"MULTI"}, {"EXEC"}}
	var stream []byte
	var raws []string
	for _, c := range cmds {
		n := len(stream)
		stream = psync.AppendCommandString(stream, c...)
		raws = append(raws, string(stream[n:]))
	}
	cr := psync.NewCommandReader(bytes.NewReader(stream), psync.Limits{}, false)
	for i, c := range cmds {
		cmd, err := cr.ReadCommand()
		require.NoError(t, err)
		assert.Equal(t, c, argStrings(cmd.Args))
		assert.Equal(t, raws[i], string(cmd.Raw))
	}
	_, err := cr.ReadCommand()
	assert.Equal(t, io.EOF, err)
}

func argStrings(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}
