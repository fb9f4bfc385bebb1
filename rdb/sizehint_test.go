package rdb_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/rdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hintBuilder records RESIZEDB hints and keys in the order it gets them.
type hintBuilder struct{ events []string }

func (h *hintBuilder) Add(e *rdb.Entry) error {
	h.events = append(h.events, fmt.Sprintf("key %d %s", e.DB, e.Key))
	return nil
}
func (h *hintBuilder) Commit()  {}
func (h *hintBuilder) Discard() {}
func (h *hintBuilder) SizeHint(db int, keys, expires uint64) {
	h.events = append(h.events, fmt.Sprintf("hint %d %d %d", db, keys, expires))
}

func hintFile(t *testing.T) []byte {
	var buf bytes.Buffer
	w, err := rdb.NewWriter(&buf, rdb.WriterOptions{Aux: []rdb.AuxField{{Key: "redis-ver", Value: "7.0.15"}}})
	require.NoError(t, err)
	require.NoError(t, w.SelectDB(0, 2, 1))
	require.NoError(t, w.WriteEntry(&rdb.Entry{Key: []byte("a"), String: []byte("1"), ExpireAt: 5, Idle: -1, Freq: -1}))
	require.NoError(t, w.WriteEntry(&rdb.Entry{Key: []byte("b"), String: []byte("2"), Idle: -1, Freq: -1}))
	require.NoError(t, w.SelectDB(3, 700, 0))
	require.NoError(t, w.WriteEntry(&rdb.Entry{Key: []byte("c"), String: []byte("3"), Idle: -1, Freq: -1}))
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestReaderReportsResizeDB(t *testing.T) {
	var got []string
	r := rdb.NewReader(bytes.NewReader(hintFile(t)), rdb.ReaderOptions{OnResizeDB: func(db int, keys, expires uint64) {
		got = append(got, fmt.Sprintf("%d %d %d", db, keys, expires))
	}})
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"0 2 1", "3 700 0"}, got)
}

func TestLoaderPassesSizeHintsBeforeTheKeys(t *testing.T) {
	hb := &hintBuilder{}
	var user []string
	l := &rdb.Loader{
		Begin: func(rdb.LoadInfo) (rdb.Builder, error) { return hb, nil },
		Options: rdb.ReaderOptions{OnResizeDB: func(db int, keys, expires uint64) {
			user = append(user, fmt.Sprint(db))
		}},
	}
	data := hintFile(t)
	loaded, err := l.Load(context.Background(), bytes.NewReader(data), psync.SnapshotInfo{Size: int64(len(data))})
	require.NoError(t, err)
	loaded.Commit()
	assert.Equal(t, []string{"hint 0 2 1", "key 0 a", "key 0 b", "hint 3 700 0", "key 3 c"}, hb.events)
	assert.Equal(t, []string{"0", "3"}, user, "the caller's own OnResizeDB still runs")
}
