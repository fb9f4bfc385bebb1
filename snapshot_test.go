package psync_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testMark = []byte("3f2a5c9d0e1b4a7c8d6e5f4a3b2c1d0e9f8a7b6c")

func TestReadSnapshotHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		max     int64
		size    int64
		mark    string
		skipped int // keepalive bytes before the $ line
		errs    []error
	}{
		{"length", "$5\r\n", 0, 5, "", 0, nil},
		{"zero length", "$0\r\n", 0, 0, "", 0, nil},
		{"keepalives", "\n\n\n$5\r\n", 0, 5, "", 3, nil},
		{"CRLF keepalives", "\r\n\n$5\r\n", 0, 5, "", 3, nil},
		{"at the limit", "$10\r\n", 10, 10, "", 0, nil},
		{"no limit", "$1000000000000\r\n", 0, 1000000000000, "", 0, nil},
		{"eof mark", "\n$EOF:" + string(testMark) + "\r\n", 0, -1, string(testMark), 1, nil},
		{"eof mark ignores the limit", "$EOF:" + string(testMark) + "\r\n", 1, -1, string(testMark), 0, nil},
		{"short mark", "$EOF:" + string(testMark[:39]) + "\r\n", 0, 0, "", 0, []error{psync.ErrEOFMark}},
		{"long mark", "$EOF:" + string(testMark) + "0\r\n", 0, 0, "", 0, []error{psync.ErrEOFMark}},
		{"empty mark", "$EOF:\r\n", 0, 0, "", 0, []error{psync.ErrEOFMark}},
		{"negative length", "$-1\r\n", 0, 0, "", 0, []error{psync.ErrProtocol}},
		{"garbage length", "$abc\r\n", 0, 0, "", 0, []error{psync.ErrProtocol}},
		{"empty length", "$\r\n", 0, 0, "", 0, []error{psync.ErrProtocol}},
		{"not a $ line", "+OK\r\n", 0, 0, "", 0, []error{psync.ErrProtocol}},
		{"over the limit", "$11\r\n", 10, 0, "", 0, []error{psync.ErrTooLarge, psync.ErrProtocol}},
		{"error line", "\n-ERR snapshot failed\r\n", 0, 0, "", 0, []error{psync.ErrUnexpectedReply}},
		{"error line LOADING", "-LOADING\r\n", 0, 0, "", 0, []error{psync.ErrUnexpectedReply}},
		{"nothing", "", 0, 0, "", 0, []error{io.ErrUnexpectedEOF}},
		{"only keepalives", "\n\n", 0, 0, "", 0, []error{io.ErrUnexpectedEOF}},
		{"unterminated", "$5", 0, 0, "", 0, []error{io.ErrUnexpectedEOF}},
	} {
		for rname, mk := range readers([]byte(tc.in)) {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				cr := newReader(rname, mk(), psync.Limits{}, false)
				size, mark, err := cr.ReadSnapshotHeader(tc.max)
				if tc.errs != nil {
					for _, e := range tc.errs {
						assert.ErrorIs(t, err, e)
					}
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tc.size, size)
				assert.Equal(t, tc.mark, string(mark))
				assert.EqualValues(t, len(tc.in), cr.Consumed(), "keepalives and the header consumed")
			})
		}
	}
	assert.Equal(t, "$5\r\n", string(psync.AppendSnapshotHeader(nil, 5, nil)))
	assert.Equal(t, "$EOF:"+string(testMark)+"\r\n", string(psync.AppendSnapshotHeader(nil, -1, testMark)))
}

// followingStream is what a master sends right after a snapshot.
var followingStream = psync.AppendCommandString(psync.AppendCommandString(nil, "SELECT", "0"), "SET", "k", "v")

// checkFollowingStream reads the commands after a snapshot.
func checkFollowingStream(t *testing.T, cr *psync.CommandReader) {
	t.Helper()
	cmd, err := cr.ReadCommand()
	require.NoError(t, err)
	assert.Equal(t, []string{"SELECT", "0"}, argStrings(cmd.Args))
	cmd, err = cr.ReadCommand()
	require.NoError(t, err)
	assert.Equal(t, []string{"SET", "k", "v"}, argStrings(cmd.Args))
	_, err = cr.ReadCommand()
	assert.Equal(t, io.EOF, err)
}

// snapshotReaders are the ways the framing tests feed a link: whole, one
// byte at a time, and random chunkings, into buffers small and large.
func snapshotReaders(data []byte) map[string]*psync.CommandReader {
	m := map[string]*psync.CommandReader{
		"whole":          psync.NewCommandReader(bytes.NewReader(data), psync.Limits{}, false),
		"whole/smallbuf": psync.NewCommandReaderSize(bytes.NewReader(data), psync.Limits{}, false, 16),
		"one-byte":       psync.NewCommandReaderSize(iotest.OneByteReader(bytes.NewReader(data)), psync.Limits{}, false, 8),
		"half":           psync.NewCommandReaderSize(iotest.HalfReader(bytes.NewReader(data)), psync.Limits{}, false, 64),
	}
	for seed := uint64(1); seed <= 8; seed++ {
		m[fmt.Sprintf("chunks/%d", seed)] = psync.NewCommandReaderSize(newChunkReader(data, seed, int(seed*13)), psync.Limits{}, false, 32)
	}
	return m
}

// readBody reads r to its end with reads of varying sizes.
func readBody(r io.Reader, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var got []byte
	buf := make([]byte, 5000)
	for {
		n, err := r.Read(buf[:1+rng.IntN(len(buf))])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func TestLenReader(t *testing.T) {
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, size := range []int{0, 1, 39, 40, 3000} {
		data := append(psync.AppendSnapshotHeader([]byte("\n\n"), int64(size), nil), payload[:size]...)
		data = append(data, followingStream...)
		for name, cr := range snapshotReaders(data) {
			t.Run(fmt.Sprintf("size=%d/%s", size, name), func(t *testing.T) {
				n, mark, err := cr.ReadSnapshotHeader(0)
				require.NoError(t, err)
				require.Nil(t, mark)
				require.EqualValues(t, size, n)
				body := cr.SnapshotBody(n, nil)
				got, err := readBody(body, uint64(size))
				require.NoError(t, err)
				assert.Equal(t, string(payload[:size]), string(got))
				k, err := body.Read(make([]byte, 10))
				assert.Zero(t, k)
				assert.Equal(t, io.EOF, err, "EOF is sticky")
				assert.EqualValues(t, len(data)-len(followingStream), cr.Consumed())
				checkFollowingStream(t, cr)
			})
		}
	}
	t.Run("io.ReadAll", func(t *testing.T) {
		data := append(psync.AppendSnapshotHeader(nil, 3000, nil), payload...)
		data = append(data, followingStream...)
		cr := psync.NewCommandReaderSize(bytes.NewReader(data), psync.Limits{}, false, 64)
		n, _, err := cr.ReadSnapshotHeader(0)
		require.NoError(t, err)
		got, err := io.ReadAll(cr.SnapshotBody(n, nil))
		require.NoError(t, err)
		assert.Equal(t, payload, got)
		checkFollowingStream(t, cr)
	})
}

func TestLenReaderTruncated(t *testing.T) {
	payload := bytes.Repeat([]byte("abcdefgh"), 100)
	for _, cut := range []int{0, 1, 399, 799} {
		data := append(psync.AppendSnapshotHeader(nil, 800, nil), payload[:cut]...)
		for name, cr := range snapshotReaders(data) {
			t.Run(fmt.Sprintf("cut=%d/%s", cut, name), func(t *testing.T) {
				n, _, err := cr.ReadSnapshotHeader(0)
				require.NoError(t, err)
				got, err := readBody(cr.SnapshotBody(n, nil), 3)
				assert.ErrorIs(t, err, psync.ErrSnapshotTruncated)
				assert.ErrorIs(t, err, io.EOF, "the link's error is kept")
				assert.Equal(t, string(payload[:cut]), string(got), "every byte that arrived is delivered")
			})
		}
	}
}

func TestEOFReader(t *testing.T) {
	random := make([]byte, 10000)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	m := string(testMark)
	for _, tc := range []struct {
		name    string
		payload string
	}{
		{"empty", ""},
		{"short", "hello"},
		{"39 bytes", strings.Repeat("z", 39)},
		{"40 bytes", strings.Repeat("z", 40)},
		{"mark prefix at end", "data" + m[:39]},
		{"mark prefix at start", m[:39] + "data"},
		{"only a mark prefix", m[:39]},
		{"repeated prefixes", strings.Repeat(m[:1], 50) + m[:20] + m[:39] + m[:38] + "x" + m[1:]},
		{"mark with last byte changed", m[:39] + "x"},
		{"random", string(random)},
	} {
		data := psync.AppendSnapshotHeader([]byte("\n"), -1, testMark)
		data = append(data, tc.payload...)
		data = append(data, testMark...)
		data = append(data, followingStream...)
		for name, cr := range snapshotReaders(data) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				size, mark, err := cr.ReadSnapshotHeader(0)
				require.NoError(t, err)
				require.EqualValues(t, -1, size)
				require.Equal(t, testMark, mark)
				body := cr.SnapshotBody(size, mark)
				got, err := readBody(body, uint64(len(tc.payload)))
				require.NoError(t, err)
				assert.Equal(t, tc.payload, string(got))
				k, err := body.Read(make([]byte, 10))
				assert.Zero(t, k)
				assert.Equal(t, io.EOF, err, "EOF is sticky")
				assert.EqualValues(t, len(data)-len(followingStream), cr.Consumed(), "the mark is consumed")
				checkFollowingStream(t, cr)
			})
		}
	}
}

// TestEOFReaderEverySplit splits the link in two at every byte around the
// end of the payload and the mark.
func TestEOFReaderEverySplit(t *testing.T) {
	payload := "payload-" + string(testMark[:30])
	data := psync.AppendSnapshotHeader(nil, -1, testMark)
	data = append(data, payload...)
	data = append(data, testMark...)
	data = append(data, followingStream...)
	for i := 0; i <= len(data); i++ {
		rd := io.MultiReader(bytes.NewReader(data[:i]), bytes.NewReader(data[i:]))
		cr := psync.NewCommandReaderSize(rd, psync.Limits{}, false, 48)
		size, mark, err := cr.ReadSnapshotHeader(0)
		require.NoError(t, err)
		got, err := readBody(cr.SnapshotBody(size, mark), uint64(i))
		require.NoError(t, err, "split at %d", i)
		require.Equal(t, payload, string(got), "split at %d", i)
		checkFollowingStream(t, cr)
	}
}

func TestEOFReaderTruncated(t *testing.T) {
	payload := strings.Repeat("0123456789", 30)
	for _, tc := range []struct {
		name string
		tail string
	}{
		{"no mark", ""},
		{"half a mark", string(testMark[:20])},
		{"mark minus one byte", string(testMark[:39])},
		{"wrong mark", strings.Repeat("f", 40)},
	} {
		data := psync.AppendSnapshotHeader(nil, -1, testMark)
		data = append(data, payload...)
		data = append(data, tc.tail...)
		sent := payload + tc.tail
		for name, cr := range snapshotReaders(data) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				size, mark, err := cr.ReadSnapshotHeader(0)
				require.NoError(t, err)
				got, err := readBody(cr.SnapshotBody(size, mark), 5)
				assert.ErrorIs(t, err, psync.ErrSnapshotTruncated)
				assert.True(t, strings.HasPrefix(sent, string(got)), "delivered bytes are what was sent")
				assert.GreaterOrEqual(t, len(got), len(sent)-39, "only a possible mark prefix is held back")
			})
		}
	}
}
