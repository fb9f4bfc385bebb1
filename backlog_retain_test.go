package psync_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeStream writes the reference stream's bytes (from, to] to b.
func writeStream(b *psync.Backlog, from, to int64) {
	if to > from {
		b.Write(streamBytes(from+1, to))
	}
}

// readCursor reads up to n bytes from c and checks them against the
// reference stream.
func readCursor(t *testing.T, c *psync.Cursor, n int) (int, error) {
	t.Helper()
	next := c.Next()
	p := make([]byte, n)
	got, err := c.Read(p)
	if err != nil {
		require.Zero(t, got)
		require.Equal(t, next, c.Next(), "a failed Read does not move the cursor")
		return 0, err
	}
	require.Equal(t, streamBytes(next, next+int64(got)-1), p[:got], "bytes from %d", next)
	require.Equal(t, next+int64(got), c.Next())
	return got, nil
}

func TestCursorWithoutRetentionLosesEvictedBytes(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	c, err := b.NewCursor(1)
	require.NoError(t, err)
	defer c.Close()
	writeStream(b, 0, 150)
	_, err = readCursor(t, c, 10)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
	assert.Zero(t, b.Retained())
	assert.EqualValues(t, 51, b.First())
}

func TestCursorRetainsWhatItHasNotRead(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	b.SetRetention(1 << 20)
	writeStream(b, 0, 50)
	c, err := b.NewCursor(21)
	require.NoError(t, err)
	other, err := b.NewCursor(51) // up to date: pins nothing
	require.NoError(t, err)
	defer other.Close()

	writeStream(b, 50, 300)
	// The ring holds (200, 300]; (20, 200] is retained for c alone.
	assert.EqualValues(t, 180, b.Retained())
	assert.EqualValues(t, 21, b.First())
	assert.True(t, b.Covers(21))
	assert.False(t, b.Covers(20))
	checkRange := func(from int64) {
		p := make([]byte, 1000)
		n, err := b.ReadAt(p, from)
		require.NoError(t, err)
		require.Equal(t, streamBytes(from, from+int64(n)-1), p[:n])
	}
	checkRange(21)
	checkRange(150)
	checkRange(250)

	for c.Next() <= 300 {
		_, err := readCursor(t, c, 37)
		require.NoError(t, err)
	}
	for other.Next() <= 300 { // a read stops where the ring starts
		_, err = readCursor(t, other, 1000)
		require.NoError(t, err)
	}
	writeStream(b, 300, 310) // the next eviction drops what nobody needs
	assert.Zero(t, b.Retained())
	assert.EqualValues(t, 211, b.First())
}

func TestCursorRetentionLimit(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	b.SetRetention(500)
	c, err := b.NewCursor(1)
	require.NoError(t, err)
	defer c.Close()
	writeStream(b, 0, 600) // exactly size+limit behind: still whole
	assert.EqualValues(t, 500, b.Retained())
	n, err := readCursor(t, c, 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	writeStream(b, 600, 602) // now 601 behind: its oldest byte is gone
	assert.EqualValues(t, 500, b.Retained(), "retention never exceeds its limit")
	_, err = readCursor(t, c, 1)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
}

func TestCursorCloseReleasesRetained(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	b.SetRetention(1 << 20)
	c, err := b.NewCursor(1)
	require.NoError(t, err)
	writeStream(b, 0, 1000)
	assert.EqualValues(t, 900, b.Retained())
	c.Close()
	assert.Zero(t, b.Retained())
	assert.EqualValues(t, 901, b.First())
	c.Close() // twice is fine
}

func TestCursorAfterReset(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	b.SetRetention(1 << 20)
	c, err := b.NewCursor(1)
	require.NoError(t, err)
	defer c.Close()
	writeStream(b, 0, 50)
	b.Reset(0)
	writeStream(b, 0, 50) // the same numbers, another history
	_, err = readCursor(t, c, 10)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
	assert.Zero(t, b.Retained())
}

func TestSetRetentionLowerDropsAtOnce(t *testing.T) {
	b := psync.NewBacklog(100, 0)
	b.SetRetention(1 << 20)
	c, err := b.NewCursor(1)
	require.NoError(t, err)
	defer c.Close()
	writeStream(b, 0, 400_000)
	require.EqualValues(t, 399_900, b.Retained())
	b.SetRetention(1000)
	assert.EqualValues(t, 1000, b.Retained())
	assert.EqualValues(t, 400_000-1100+1, b.First())
	_, err = readCursor(t, c, 10)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
}

// TestCursorRetentionModel runs random writes, cursor opens, reads and
// closes against the rule: a cursor never loses a byte while it is at most
// Size()+limit behind, the retained bytes never exceed the limit, and every
// byte read is the stream's.
func TestCursorRetentionModel(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		size := 1 + rng.IntN(300)
		limit := int64(rng.IntN(3)) * int64(rng.IntN(200_000))
		b := psync.NewBacklog(size, 0)
		b.SetRetention(limit)
		var end int64
		type cur struct {
			c    *psync.Cursor
			lost bool // fell behind size+limit at some point
		}
		var curs []*cur
		for step := 0; step < 3000; step++ {
			switch op := rng.IntN(10); {
			case op < 4: // write
				n := int64(rng.IntN(3 * size))
				if rng.IntN(50) == 0 {
					n = int64(rng.IntN(70_000))
				}
				writeStream(b, end, end+n)
				end += n
				for _, c := range curs {
					if end+1-c.c.Next() > int64(size)+limit {
						c.lost = true
					}
				}
				require.LessOrEqual(t, b.Retained(), limit, "seed %d", seed)
			case op < 5 && len(curs) < 8: // open
				first := b.First()
				next := first + rng.Int64N(end+2-first)
				c, err := b.NewCursor(next)
				require.NoError(t, err, "seed %d: NewCursor(%d) in [%d, %d]", seed, next, first, end)
				curs = append(curs, &cur{c: c})
			case op < 9 && len(curs) > 0: // read
				c := curs[rng.IntN(len(curs))]
				_, err := readCursor(t, c.c, 1+rng.IntN(2*size+retainBlockForTest))
				if err != nil {
					require.ErrorIs(t, err, psync.ErrNotInBacklog)
					require.True(t, c.lost, "seed %d: cursor at %d lost bytes while within %d+%d of %d", seed, c.c.Next(), size, limit, end)
				}
			case len(curs) > 0: // close
				i := rng.IntN(len(curs))
				curs[i].c.Close()
				curs = append(curs[:i], curs[i+1:]...)
			}
			if len(curs) == 0 {
				require.Zero(t, b.Retained(), "seed %d: nothing retained without cursors", seed)
			}
		}
		for _, c := range curs {
			c.c.Close()
		}
		assert.Zero(t, b.Retained(), "seed %d", seed)
	}
}

const retainBlockForTest = 64 << 10

// TestCursorConcurrent has one writer and several cursors reading at their
// own pace under the race detector; no cursor may lose or corrupt a byte.
func TestCursorConcurrent(t *testing.T) {
	b := psync.NewBacklog(1000, 0)
	b.SetRetention(8 << 20)
	const total = 4 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		c, err := b.NewCursor(1)
		require.NoError(t, err)
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			defer c.Close()
			p := make([]byte, 100+r*3000)
			for c.Next() <= total {
				next := c.Next()
				n, err := c.Read(p)
				if !assert.NoError(t, err) {
					return
				}
				if n == 0 {
					if b.Wait(ctx, next-1) != nil {
						t.Error("timed out")
						return
					}
					continue
				}
				for i := 0; i < n; i++ {
					if p[i] != streamByte(next+int64(i)) {
						t.Errorf("cursor %d: wrong byte at %d", r, next+int64(i))
						return
					}
				}
			}
		}(r)
	}
	var end int64
	for end < total {
		n := min(int64(1+end%777), total-end)
		writeStream(b, end, end+n)
		end += n
	}
	wg.Wait()
	assert.Zero(t, b.Retained())
}
