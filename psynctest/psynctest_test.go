package psynctest_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func snapshotOf(t *testing.T, s *psynctest.Store) []byte {
	t.Helper()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: s})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	s.SetMaster(m)
	sn, err := s.Snapshot(context.Background())
	require.NoError(t, err)
	defer sn.Release()
	var b bytes.Buffer
	n, err := sn.WriteTo(&b)
	require.NoError(t, err)
	require.EqualValues(t, b.Len(), n)
	require.EqualValues(t, sn.(psync.SnapshotSizer).Len(), n, "Len is exact")
	return b.Bytes()
}

func TestStoreSnapshotRoundTrip(t *testing.T) {
	src := psynctest.NewStore()
	require.NoError(t, src.Set("a", "1"))
	require.NoError(t, src.Set("b", strings.Repeat("x", 300)))
	require.NoError(t, src.Exec("INCRBY", "n", "5"))
	snap := snapshotOf(t, src)

	dst := psynctest.NewStore()
	require.NoError(t, dst.Set("old", "v"))
	l, err := dst.Load(context.Background(), bytes.NewReader(snap), psync.SnapshotInfo{Offset: 7})
	require.NoError(t, err)
	_, ok := dst.Get("a")
	assert.False(t, ok, "nothing visible before Commit")
	l.Commit()
	assert.Equal(t, src.Digest(), dst.Digest())
	assert.EqualValues(t, 1, dst.Loads())
}

func TestStoreLoadRejectsHostileSnapshots(t *testing.T) {
	src := psynctest.NewStore()
	require.NoError(t, src.Set("key", "value"))
	good := snapshotOf(t, src)
	cases := map[string][]byte{
		"empty":          nil,
		"bad magic":      []byte("XXXX"),
		"truncated":      good[:len(good)-3],
		"bad checksum":   append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1),
		"huge count":     []byte("PSTS\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
		"huge string":    []byte("PSTS\x01\xff\xff\xff\xff\x0f"),
		"string cut off": []byte("PSTS\x01\x10abc"),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			dst := psynctest.NewStore()
			require.NoError(t, dst.Set("old", "v"))
			_, err := dst.Load(context.Background(), bytes.NewReader(in), psync.SnapshotInfo{})
			assert.ErrorIs(t, err, psynctest.ErrBadSnapshot)
			v, _ := dst.Get("old")
			assert.Equal(t, "v", v)
		})
	}
}

func TestStoreApplyDetectsDuplicates(t *testing.T) {
	s := psynctest.NewStore()
	cmd := psync.AppendCommandString(nil, "SET", "k", "v")
	args := [][]byte{[]byte("SET"), []byte("k"), []byte("v")}
	require.NoError(t, s.Apply(psync.Command{Args: args, Raw: cmd, Offset: int64(len(cmd))}))
	assert.NoError(t, s.Err())
	require.NoError(t, s.Apply(psync.Command{Args: args, Raw: cmd, Offset: int64(len(cmd))}))
	assert.Error(t, s.Err(), "the same bytes applied twice")
	assert.ErrorIs(t, s.Apply(psync.Command{Args: [][]byte{[]byte("NOPE")}, Raw: []byte("x"), Offset: 100}), psynctest.ErrUnknownCommand)
}

func TestConnCutAfterRead(t *testing.T) {
	a, b := psynctest.Pipe()
	a.CutAfterRead(5)
	go b.Write([]byte("hello world"))
	got, err := io.ReadAll(a)
	assert.ErrorIs(t, err, psynctest.ErrCut)
	assert.Equal(t, "hello", string(got))
	assert.True(t, a.Closed())
	assert.EqualValues(t, 5, a.BytesRead())
}

func TestConnStallAndResume(t *testing.T) {
	a, b := psynctest.Pipe()
	a.StallAfterRead(3)
	go b.Write([]byte("abcdef"))
	p := make([]byte, 3)
	_, err := io.ReadFull(a, p)
	require.NoError(t, err)
	got := make(chan string, 1)
	go func() {
		q := make([]byte, 3)
		_, _ = io.ReadFull(a, q)
		got <- string(q)
	}()
	select {
	case <-got:
		t.Fatal("read through a stall")
	case <-time.After(50 * time.Millisecond):
	}
	a.Resume()
	assert.Equal(t, "def", <-got)
}
