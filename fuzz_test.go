package psync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/require"
)

// chunkReader hands out data in reads of pseudo-random sizes in [1, max],
// so a parser sees every kind of split. What it has not handed out yet
// stays in data.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
	max  int
}

func newChunkReader(data []byte, seed uint64, max int) *chunkReader {
	return &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), max: max}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rng.IntN(r.max), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readResult is everything one CommandReader returned for an input.
type readResult struct {
	raws     []string
	err      error
	consumed int64
}

// readCommands reads commands until the first error, checking on the way
// that each Raw is the next slice of data, that the args lie in order inside
// Raw, that Consumed counts exactly the Raws, and that Buffered is what
// follows them in data.
func readCommands(t *testing.T, data []byte, cr *psync.CommandReader, lim psync.Limits, inline bool) readResult {
	t.Helper()
	var res readResult
	off := 0
	for i := 0; ; i++ {
		require.LessOrEqual(t, i, len(data)+1, "more commands than input bytes")
		cmd, err := cr.ReadCommand()
		if err != nil {
			res.err = err
			break
		}
		raw := cmd.Raw
		require.NotEmpty(t, raw, "a command consumes bytes")
		require.LessOrEqual(t, off+len(raw), len(data))
		require.Equal(t, data[off:off+len(raw)], raw, "Raw of command %d is not the next input bytes", i)
		p := 0
		for j, a := range cmd.Args {
			k := bytes.Index(raw[p:], a)
			require.GreaterOrEqual(t, k, 0, "arg %d %q not inside Raw %q", j, a, raw)
			p += k + len(a)
		}
		if raw[0] == '*' {
			require.LessOrEqual(t, len(cmd.Args), lim.MaxArgs)
			for _, a := range cmd.Args {
				require.LessOrEqual(t, int64(len(a)), lim.MaxBulk)
			}
		} else {
			require.True(t, inline, "inline command %q accepted with inline off", raw)
			require.Equal(t, byte('\n'), raw[len(raw)-1])
			for _, a := range cmd.Args {
				require.NotEmpty(t, a)
				require.False(t, bytes.ContainsAny(a, " \t\r\n"), "inline arg %q", a)
			}
		}
		off += len(raw)
		res.raws = append(res.raws, string(raw))
		require.EqualValues(t, off, cr.Consumed())
	}
	res.consumed = int64(off)
	require.EqualValues(t, off, cr.Consumed())
	require.True(t, bytes.HasPrefix(data[off:], cr.Buffered()), "Buffered %q does not follow the consumed bytes", cr.Buffered())
	switch {
	case res.err == io.EOF:
		require.Equal(t, len(data), off, "clean EOF with bytes left")
	case res.err == io.ErrUnexpectedEOF:
		require.Less(t, off, len(data), "unexpected EOF with nothing left")
	default:
		require.ErrorIs(t, res.err, psync.ErrProtocol)
	}
	return res
}

func errClass(err error) string {
	switch {
	case err == io.EOF:
		return "EOF"
	case err == io.ErrUnexpectedEOF:
		return "UnexpectedEOF"
	case errors.Is(err, psync.ErrProtocol):
		return "protocol"
	}
	return fmt.Sprint(err)
}

func commandSeeds() [][]byte {
	set := psync.AppendCommandString(nil, "SET", "key:000000000001", strings.Repeat("v", 100))
	return [][]byte{
		set,
		append(psync.AppendCommandString(nil, "SELECT", "0"), set...),
		[]byte("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"),
		[]byte("PING\r\nREPLCONF capa eof capa psync2\r\nPSYNC ? -1\r\n"),
		[]byte("*3\r\n$5\r\nPSYNC\r\n$40\r\n0123456789abcdef0123456789abcdef01234567\r\n$4\r\n1001\r\n"),
		[]byte("*1\r\n$-1\r\n"),
		[]byte("*2\r\n$3\r\nGET\r\n$400000000\r\n"),
		[]byte("*1\r\n$3\r\nabc\n"),
		[]byte("*1\r\n$0\r\n\r\n\n\r\n"),
	}
}

func FuzzCommandReader(f *testing.F) {
	for _, s := range commandSeeds() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, inline bool) {
		lim := psync.Limits{MaxBulk: 256, MaxArgs: 16, MaxInline: 128}
		whole := readCommands(t, data, psync.NewCommandReader(bytes.NewReader(data), lim, inline), lim, inline)
		one := readCommands(t, data, psync.NewCommandReaderSize(iotest.OneByteReader(bytes.NewReader(data)), lim, inline, 8), lim, inline)
		chunked := readCommands(t, data, psync.NewCommandReaderSize(newChunkReader(data, uint64(len(data)), 7), lim, inline, 16), lim, inline)
		// However the input is split, the same commands come out, except
		// that an over-long line is only caught when it arrives without its
		// LF (as Redis does): then one side stops early with ErrTooLarge.
		for _, other := range []readResult{one, chunked} {
			if errors.Is(whole.err, psync.ErrTooLarge) || errors.Is(other.err, psync.ErrTooLarge) {
				n := min(len(whole.raws), len(other.raws))
				require.True(t, slices.Equal(whole.raws[:n], other.raws[:n]), "%q\n%q", whole.raws, other.raws)
				continue
			}
			require.True(t, slices.Equal(whole.raws, other.raws), "%q\n%q", whole.raws, other.raws)
			require.Equal(t, errClass(whole.err), errClass(other.err), "whole: %v, split: %v", whole.err, other.err)
		}
	})
}

func FuzzParseSyncRequest(f *testing.F) {
	f.Add("PSYNC", "?", "-1", uint8(3))
	f.Add("psync", "0123456789abcdef0123456789abcdef01234567", "1001", uint8(3))
	f.Add("PSYNC", "0123456789ABCDEF0123456789ABCDEF01234567", "4611686018427387904", uint8(3))
	f.Add("SYNC", "", "", uint8(1))
	f.Add("PSYNC", "?", "", uint8(2))
	f.Add("PSYNC", "xyz", "1", uint8(3))
	f.Fuzz(func(t *testing.T, name, id, off string, n uint8) {
		args := [][]byte{[]byte(name), []byte(id), []byte(off), []byte(off)}[:n%5]
		req, err := psync.ParseSyncRequest(args)
		if err != nil {
			require.ErrorIs(t, err, psync.ErrProtocol)
			// A well-formed PSYNC is never refused: any id ParseReplID
			// takes, any offset ParseOffset takes.
			_, idErr := psync.ParseReplID(id)
			_, offErr := psync.ParseOffset(off)
			if len(args) == 3 && strings.EqualFold(name, "psync") && (id == "?" || idErr == nil) && offErr == nil {
				t.Fatalf("PSYNC %q %q refused: %v", id, off, err)
			}
			return
		}
		if req.Legacy {
			require.True(t, strings.EqualFold(name, "sync"))
			require.Len(t, args, 1)
			return
		}
		require.True(t, strings.EqualFold(name, "psync"))
		require.Len(t, args, 3)
		require.LessOrEqual(t, req.Offset, int64(psync.MaxOffset))
		if id == "?" {
			require.Empty(t, req.ReplID)
		} else {
			require.True(t, req.ReplID.Valid())
			require.Equal(t, strings.ToLower(id), string(req.ReplID))
		}
		// What a replica would send for this request parses back to it.
		again, err := psync.ParseSyncRequest([][]byte{[]byte("PSYNC"), []byte(id), []byte(strconv.FormatInt(req.Offset, 10))})
		require.NoError(t, err)
		require.Equal(t, req, again)
	})
}

func FuzzSnapshotFraming(f *testing.F) {
	mark := strings.Repeat("ab01", 10)
	f.Add([]byte("\n\n$5\r\nhello*1\r\n$4\r\nPING\r\n"), uint64(1), uint16(0))
	f.Add([]byte("\n$EOF:"+mark+"\r\nhello "+mark[:39]+"x"+mark+"*1\r\n$4\r\nPING\r\n"), uint64(2), uint16(0))
	f.Add([]byte("$EOF:"+mark+"\r\n"+mark), uint64(3), uint16(0))
	f.Add([]byte("$10\r\nshort"), uint64(4), uint16(0))
	f.Add([]byte("$100\r\n"), uint64(5), uint16(10))
	f.Add([]byte("-ERR no\r\n"), uint64(6), uint16(0))
	f.Add([]byte("$EOF:abc\r\n"), uint64(7), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, maxSize uint16) {
		src := newChunkReader(data, seed, 1+int(seed%97))
		cr := psync.NewCommandReaderSize(src, psync.Limits{MaxInline: 256}, false, 64)
		size, mark, err := cr.ReadSnapshotHeader(int64(maxSize))
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, psync.ErrProtocol) &&
				!errors.Is(err, psync.ErrEOFMark) && !errors.Is(err, psync.ErrUnexpectedReply) {
				t.Fatalf("unexpected header error %v", err)
			}
			return
		}
		hdrEnd := int(cr.Consumed())
		require.LessOrEqual(t, hdrEnd, len(data))
		head := data[:hdrEnd]
		lines := strings.Split(strings.TrimSuffix(string(head), "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			require.Contains(t, []string{"", "\r"}, l, "only keepalives precede the $ line")
		}
		last := strings.TrimSuffix(lines[len(lines)-1], "\r")
		if mark != nil {
			require.Equal(t, int64(-1), size)
			require.Equal(t, "$EOF:"+string(mark), last)
		} else {
			require.GreaterOrEqual(t, size, int64(0))
			if maxSize > 0 {
				require.LessOrEqual(t, size, int64(maxSize))
			}
			n, err := strconv.ParseInt(last[1:], 10, 64)
			require.NoError(t, err)
			require.Equal(t, size, n)
		}

		rest := data[hdrEnd:]
		body := cr.SnapshotBody(size, mark)
		var got []byte
		buf := make([]byte, 80)
		rng := rand.New(rand.NewPCG(seed, 7))
		for {
			n, err := body.Read(buf[:1+rng.IntN(len(buf))])
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				require.ErrorIs(t, err, psync.ErrSnapshotTruncated)
				require.True(t, bytes.HasPrefix(rest, got))
				if mark == nil {
					require.Less(t, int64(len(rest)), size)
					require.Equal(t, string(rest), string(got))
				} else {
					require.Equal(t, -1, bytes.Index(rest, mark))
					require.GreaterOrEqual(t, len(got), len(rest)-len(mark)+1)
				}
				return
			}
			require.LessOrEqual(t, len(got), len(rest))
		}
		var tail []byte
		if mark == nil {
			require.LessOrEqual(t, size, int64(len(rest)))
			require.Equal(t, string(rest[:size]), string(got))
			tail = rest[size:]
		} else {
			i := bytes.Index(rest, mark)
			require.GreaterOrEqual(t, i, 0, "EOF without the mark")
			require.Equal(t, string(rest[:i]), string(got))
			tail = rest[i+len(mark):]
		}
		n, err := body.Read(buf)
		require.Equal(t, 0, n)
		require.Equal(t, io.EOF, err, "EOF is sticky")
		require.EqualValues(t, len(data)-len(tail), cr.Consumed())
		// The stream after the snapshot is intact.
		require.Equal(t, string(tail), string(cr.Buffered())+string(src.data))
		want, wantErr := psync.NewCommandReader(bytes.NewReader(tail), psync.Limits{}, false).ReadCommand()
		cmd, err := cr.ReadCommand()
		require.Equal(t, errClass(wantErr), errClass(err))
		require.Equal(t, string(want.Raw), string(cmd.Raw))
	})
}

// fuzzReplID is the fixed history of the fuzzed master, so the fuzzer can
// reach the partial resync path.
const fuzzReplID psync.ReplID = "0123456789abcdef0123456789abcdef01234567"

// sizeless hides a snapshot's Len, forcing the EOF-mark framing (or a spool
// to a temporary file for replicas without capa eof).
type sizeless struct{ s psync.Snapshotter }

type sizelessSnapshot struct{ s psync.Snapshot }

func (s sizeless) Snapshot(ctx context.Context) (psync.Snapshot, error) {
	snap, err := s.s.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return sizelessSnapshot{snap}, nil
}
func (s sizelessSnapshot) Offset() int64                      { return s.s.Offset() }
func (s sizelessSnapshot) WriteTo(w io.Writer) (int64, error) { return s.s.WriteTo(w) }
func (s sizelessSnapshot) Release()                           { s.s.Release() }

func handshakeSeeds() [][]byte {
	cmd := psync.AppendCommandString
	var full, partial, legacy, authed, rdbOnly []byte
	full = cmd(full, "PING")
	full = cmd(full, "REPLCONF", "listening-port", "6380")
	full = cmd(full, "REPLCONF", "capa", "eof", "capa", "psync2")
	full = cmd(full, "PSYNC", "?", "-1")
	full = cmd(full, "REPLCONF", "ACK", "1000")
	partial = cmd(partial, "PING")
	partial = cmd(partial, "REPLCONF", "capa", "psync2")
	partial = cmd(partial, "PSYNC", string(fuzzReplID), "1001")
	partial = cmd(partial, "REPLCONF", "ACK", "1010")
	legacy = cmd(legacy, "SYNC")
	authed = cmd(authed, "AUTH", "secret")
	authed = cmd(authed, "PSYNC", string(fuzzReplID), "1000000")
	rdbOnly = cmd(rdbOnly, "REPLCONF", "rdb-only", "1")
	rdbOnly = cmd(rdbOnly, "SYNC")
	return [][]byte{
		full, partial, legacy, authed, rdbOnly,
		[]byte("PING\r\nREPLCONF capa eof\r\nPSYNC ? -1\r\nREPLCONF ACK 1\r\n"),
		[]byte("AUTH x\r\nAUTH y\r\nAUTH z\r\n"),
		[]byte("*1\r\n$4\r\nQUIT\r\n"),
		[]byte("*2\r\n$5\r\nPSYNC\r\n"),
		[]byte("*1\r\n$999999999\r\n"),
	}
}

func FuzzMasterHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		for _, mode := range []uint8{0, 9, 2, 4} {
			f.Add(s, mode)
		}
	}
	tmp := f.TempDir()
	logger := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		// mode bits 0 and 3 both set: keep the link open after the input
		// (the master must time out; slow, so a quarter of the inputs);
		// bit 1: snapshots without a known size; bit 2: a password.
		keepOpen := mode&9 == 9
		store := psynctest.NewStore()
		cfg := psync.MasterConfig{
			Snapshotter:   store,
			BacklogSize:   512,
			Position:      psync.Position{ID: fuzzReplID, Offset: 1000},
			PingPeriod:    -1,
			Timeout:       50 * time.Millisecond,
			FullSyncDelay: -1,
			TempDir:       tmp,
			Limits:        psync.Limits{MaxBulk: 4096, MaxArgs: 32, MaxInline: 1024},
			Logger:        logger,
		}
		if mode&2 != 0 {
			cfg.Snapshotter = sizeless{store}
		}
		if mode&4 != 0 {
			cfg.Password = "secret"
		}
		m, err := psync.NewMaster(cfg)
		require.NoError(t, err)
		defer m.Close()
		store.SetMaster(m)
		require.NoError(t, store.Set("a", "1"))
		require.NoError(t, store.Set("b", "2"))

		mine, theirs := net.Pipe()
		defer theirs.Close()
		served := make(chan error, 1)
		go func() { served <- m.Serve(context.Background(), mine) }()
		go func() { _, _ = io.Copy(io.Discard, theirs) }()
		go func() {
			_, _ = theirs.Write(data)
			if !keepOpen {
				theirs.Close()
			}
		}()
		require.NoError(t, store.Set("c", "3"))
		hung := func(what string) {
			var stacks bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%s did not return within 5 s (mode %d)\n%s", what, mode, stacks.String())
		}
		select {
		case <-served:
		case <-time.After(time.Second):
			// Still serving a peer that keeps its link open: legitimate for a
			// legacy SYNC peer, which Redis (and psync) never time out. Once
			// the peer goes away, Serve must return.
			theirs.Close()
			select {
			case <-served:
			case <-time.After(5 * time.Second):
				hung("Serve")
			}
		}
		require.Empty(t, m.Stats().Replicas, "the link is detached once Serve returns")
		closed := make(chan struct{})
		go func() { m.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			hung("Close")
		}
	})
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpora under
// testdata/fuzz when PSYNC_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("PSYNC_WRITE_CORPUS") != "1" {
		t.Skip("set PSYNC_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	write := func(name string, i int, values ...string) {
		dir := filepath.Join("testdata", "fuzz", name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		body := "go test fuzz v1\n" + strings.Join(values, "\n") + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
	}
	b := func(p []byte) string { return "[]byte(" + strconv.Quote(string(p)) + ")" }
	for i, s := range commandSeeds() {
		write("FuzzCommandReader", i, b(s), fmt.Sprintf("bool(%v)", i%2 == 1))
	}
	for i, a := range [][4]string{
		{"PSYNC", "?", "-1", "3"},
		{"PSYNC", string(fuzzReplID), "1001", "3"},
		{"SYNC", "", "", "1"},
		{"PSYNC", "0123456789ABCDEF0123456789ABCDEF0123456g", "1", "3"},
		{"PSYNC", "?", "-5", "3"},
		{"PSYNC", string(fuzzReplID), "4611686018427387904", "3"}, // regression: 19-digit offsets were refused
	} {
		q := func(s string) string { return "string(" + strconv.Quote(s) + ")" }
		write("FuzzParseSyncRequest", i, q(a[0]), q(a[1]), q(a[2]), "uint8("+a[3]+")")
	}
	mark := strings.Repeat("ab01", 10)
	for i, s := range []string{
		"\n\n$5\r\nhello*1\r\n$4\r\nPING\r\n",
		"\n$EOF:" + mark + "\r\nhello " + mark[:39] + "x" + mark + "*1\r\n$4\r\nPING\r\n",
		"$EOF:" + mark + "\r\n" + mark,
		"$10\r\nshort",
	} {
		write("FuzzSnapshotFraming", i, b([]byte(s)), fmt.Sprintf("uint64(%d)", i+1), "uint16(0)")
	}
	for i, s := range handshakeSeeds() {
		write("FuzzMasterHandshake", i, b(s), fmt.Sprintf("uint8(%d)", []int{0, 0, 2, 4, 2, 9, 4, 0, 0, 0}[i]))
	}
}
