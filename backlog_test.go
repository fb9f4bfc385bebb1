package psync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// streamByte is the byte at offset off of the reference stream the backlog
// tests write: a function of the offset alone, so any reader can check any
// byte it gets.
func streamByte(off int64) byte {
	x := uint64(off) * 0x9e3779b97f4a7c15
	return byte(x>>56) ^ byte(x>>24)
}

// streamBytes returns the reference stream's bytes at offsets from..to.
func streamBytes(from, to int64) []byte {
	b := make([]byte, 0, to-from+1)
	for o := from; o <= to; o++ {
		b = append(b, streamByte(o))
	}
	return b
}

// checkBacklog verifies every accessor of b against the reference stream,
// the backlog having received bytes (base, end] and having capacity size.
func checkBacklog(t *testing.T, b *psync.Backlog, base, end int64, size int) {
	t.Helper()
	held := min(end-base, int64(size))
	first := end - held + 1
	require.Equal(t, end, b.Offset())
	require.Equal(t, int(held), b.Len())
	require.Equal(t, first, b.First())
	buf := make([]byte, size+5)
	for next := first - 2; next <= end+2; next++ {
		in := next >= first && next <= end+1
		require.Equal(t, in, b.Covers(next), "Covers(%d) with [%d, %d]", next, first, end)
		for _, plen := range []int{0, 1, 3, size - 1, size, size + 5} {
			if plen < 0 {
				continue
			}
			p := buf[:plen]
			n, err := b.ReadAt(p, next)
			if !in {
				require.ErrorIs(t, err, psync.ErrNotInBacklog, "ReadAt(%d) with [%d, %d]", next, first, end)
				require.Zero(t, n)
				continue
			}
			require.NoError(t, err, "ReadAt(%d) with [%d, %d]", next, first, end)
			want := min(int64(plen), end+1-next)
			require.EqualValues(t, want, n, "ReadAt(len %d, %d) with [%d, %d]", plen, next, first, end)
			for i := 0; i < n; i++ {
				if p[i] != streamByte(next+int64(i)) {
					require.Equal(t, streamBytes(next, next+int64(n)-1), p[:n], "bytes at %d", next)
				}
			}
		}
	}
}

func TestBacklogEmpty(t *testing.T) {
	b := psync.NewBacklog(8, 100)
	assert.Equal(t, 8, b.Size())
	checkBacklog(t, b, 100, 100, 8)
	n, err := b.ReadAt(make([]byte, 8), 101)
	assert.NoError(t, err)
	assert.Zero(t, n, "ReadAt(Offset()+1) has nothing to return")

	assert.Equal(t, psync.DefaultBacklogSize, psync.NewBacklog(0, 0).Size())
	assert.Equal(t, psync.DefaultBacklogSize, psync.NewBacklog(-5, 0).Size())
}

// TestBacklogWrapAround writes the reference stream in writes of every size
// from 1 to beyond the capacity, at every phase of the ring, and checks all
// of the backlog after each write.
func TestBacklogWrapAround(t *testing.T) {
	for _, size := range []int{1, 2, 7, 8} {
		for phase := 0; phase < size; phase++ {
			for wlen := 1; wlen <= 2*size+1; wlen++ {
				name := fmt.Sprintf("size=%d/phase=%d/write=%d", size, phase, wlen)
				t.Run(name, func(t *testing.T) {
					base := int64(1000)
					b := psync.NewBacklog(size, base)
					end := base
					write := func(n int) {
						if n == 0 {
							return
						}
						got := b.Write(streamBytes(end+1, end+int64(n)))
						end += int64(n)
						require.Equal(t, end, got, "Write returns the new offset")
						checkBacklog(t, b, base, end, size)
					}
					write(phase)
					for i := 0; i < 3; i++ {
						write(wlen)
					}
				})
			}
		}
	}
}

func TestBacklogRandomWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{16, 100, 1024} {
		b := psync.NewBacklog(size, 0)
		end := int64(0)
		for i := 0; i < 300; i++ {
			n := 1 + rng.IntN(size*3/2)
			b.Write(streamBytes(end+1, end+int64(n)))
			end += int64(n)
			if i%25 == 0 || i == 299 {
				checkBacklog(t, b, 0, end, size)
			}
		}
	}
}

func TestBacklogSmallerThanOneCommand(t *testing.T) {
	cmd := psync.AppendCommandString(nil, "SET", "key:000000000001", string(bytes.Repeat([]byte("v"), 100)))
	require.Len(t, cmd, 144)
	b := psync.NewBacklog(10, 0)
	assert.EqualValues(t, 144, b.Write(cmd))
	assert.Equal(t, 10, b.Len())
	assert.EqualValues(t, 135, b.First())
	p := make([]byte, 64)
	n, err := b.ReadAt(p, 135)
	require.NoError(t, err)
	assert.Equal(t, cmd[134:], p[:n])
	_, err = b.ReadAt(p, 134)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
	assert.False(t, b.Covers(1), "a replica that missed the command cannot continue")

	assert.EqualValues(t, 288, b.Write(cmd))
	n, err = b.ReadAt(p, 279)
	require.NoError(t, err)
	assert.Equal(t, cmd[134:], p[:n])
}

func TestBacklogReset(t *testing.T) {
	b := psync.NewBacklog(16, 0)
	b.Write(streamBytes(1, 40))
	b.Reset(500)
	checkBacklog(t, b, 500, 500, 16)
	_, err := b.ReadAt(make([]byte, 4), 30)
	assert.ErrorIs(t, err, psync.ErrNotInBacklog)
	assert.EqualValues(t, 510, b.Write(streamBytes(501, 510)))
	checkBacklog(t, b, 500, 510, 16)
	b.Write(streamBytes(511, 530))
	checkBacklog(t, b, 500, 530, 16)

	b.Reset(0) // backwards too: a new history
	checkBacklog(t, b, 0, 0, 16)
	b.Write(streamBytes(1, 3))
	checkBacklog(t, b, 0, 3, 16)
}

func TestBacklogWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("returns at once when past", func(t *testing.T) {
		b := psync.NewBacklog(16, 10)
		assert.NoError(t, b.Wait(ctx, 9))
		b.Write([]byte("x"))
		assert.NoError(t, b.Wait(ctx, 10))
	})

	waitAsync := func(b *psync.Backlog, ctx context.Context, after int64) chan error {
		done := make(chan error, 1)
		go func() { done <- b.Wait(ctx, after) }()
		return done
	}
	blocked := func(t *testing.T, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("Wait returned %v before anything happened", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	woken := func(t *testing.T, done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(3 * time.Second):
			t.Fatal("Wait not woken")
			return nil
		}
	}

	t.Run("wakes on write", func(t *testing.T) {
		b := psync.NewBacklog(16, 10)
		var waiters []chan error
		for i := 0; i < 5; i++ {
			waiters = append(waiters, waitAsync(b, ctx, 10))
		}
		blocked(t, waiters[0])
		b.Write([]byte("abc"))
		for _, w := range waiters {
			assert.NoError(t, woken(t, w))
		}
	})
	t.Run("wakes on reset", func(t *testing.T) {
		b := psync.NewBacklog(16, 10)
		done := waitAsync(b, ctx, 10)
		blocked(t, done)
		b.Reset(0)
		assert.NoError(t, woken(t, done))
		assert.Equal(t, int64(0), b.Offset())
	})
	t.Run("ends with ctx", func(t *testing.T) {
		b := psync.NewBacklog(16, 10)
		cctx, ccancel := context.WithCancel(ctx)
		done := waitAsync(b, cctx, 10)
		blocked(t, done)
		ccancel()
		assert.ErrorIs(t, woken(t, done), context.Canceled)

		dctx, dcancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer dcancel()
		assert.ErrorIs(t, b.Wait(dctx, 10), context.DeadlineExceeded)
	})
	t.Run("many rounds", func(t *testing.T) {
		// A waiter re-arming after every wake never misses a write.
		b := psync.NewBacklog(64, 0)
		const rounds = 2000
		done := make(chan error, 1)
		go func() {
			for off := int64(0); off < rounds; {
				if err := b.Wait(ctx, off); err != nil {
					done <- err
					return
				}
				off = b.Offset()
			}
			done <- nil
		}()
		for i := 0; i < rounds; i++ {
			b.Write([]byte{1})
		}
		assert.NoError(t, woken(t, done))
	})
}

// TestBacklogConcurrentReaders runs one writer and readers of different
// speeds: every byte a reader gets must be the reference stream's byte at
// that offset, and a reader that falls behind must get ErrNotInBacklog,
// never wrong bytes.
func TestBacklogConcurrentReaders(t *testing.T) {
	const size = 4096
	const total = 400_000
	b := psync.NewBacklog(size, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	type result struct {
		read, behind int64
		err          error
	}
	bufSizes := []int{7, 64, 1000, 5000, 100, 3000}
	results := make([]result, len(bufSizes))
	var wg sync.WaitGroup
	for r, bs := range bufSizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[r]
			p := make([]byte, bs)
			slow := r%2 == 1
			next := int64(1)
			for next <= total {
				if err := b.Wait(ctx, next-1); err != nil {
					res.err = err
					return
				}
				n, err := b.ReadAt(p, next)
				if errors.Is(err, psync.ErrNotInBacklog) {
					if next >= b.First() {
						res.err = fmt.Errorf("ErrNotInBacklog at %d while First is %d", next, b.First())
						return
					}
					res.behind++
					next = b.First()
					continue
				}
				if err != nil {
					res.err = err
					return
				}
				for i := 0; i < n; i++ {
					if p[i] != streamByte(next+int64(i)) {
						res.err = fmt.Errorf("wrong byte at offset %d", next+int64(i))
						return
					}
				}
				next += int64(n)
				res.read += int64(n)
				if slow {
					time.Sleep(time.Duration(n%3) * 10 * time.Microsecond)
				}
			}
		}()
	}

	rng := rand.New(rand.NewPCG(3, 4))
	chunk := make([]byte, 0, 2*size)
	for end := int64(0); end < total; {
		n := int64(1 + rng.IntN(300))
		if rng.IntN(200) == 0 {
			n = size + 100 // now and then a write larger than the ring
		}
		n = min(n, total-end)
		chunk = chunk[:0]
		for o := end + 1; o <= end+n; o++ {
			chunk = append(chunk, streamByte(o))
		}
		end = b.Write(chunk)
	}
	wg.Wait()
	var behind int64
	for r, res := range results {
		require.NoError(t, res.err, "reader %d", r)
		assert.Positive(t, res.read, "reader %d", r)
		behind += res.behind
	}
	t.Logf("readers fell behind %d times", behind)
}

func TestBacklogWriteDoesNotAllocate(t *testing.T) {
	b := psync.NewBacklog(1024, 0)
	cmd := psync.AppendCommandString(nil, "SET", "key:000000000001", string(bytes.Repeat([]byte("v"), 100)))
	big := make([]byte, 3000)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { b.Write(cmd) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { b.Write(big) }))
	p := make([]byte, 512)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _, _ = b.ReadAt(p, b.Offset()-200) }))
}

func BenchmarkBacklogWrite(b *testing.B) {
	bl := psync.NewBacklog(psync.DefaultBacklogSize, 0)
	cmd := psync.AppendCommandString(nil, "SET", "key:000000000001", string(bytes.Repeat([]byte("v"), 100)))
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		bl.Write(cmd)
	}
}

func BenchmarkBacklogReadAt(b *testing.B) {
	bl := psync.NewBacklog(psync.DefaultBacklogSize, 0)
	chunk := bytes.Repeat([]byte("x"), 4096)
	for bl.Len() < bl.Size() {
		bl.Write(chunk)
	}
	bl.Write(chunk[:100]) // the ring's start is not at index 0
	p := make([]byte, 16<<10)
	first, end := bl.First(), bl.Offset()
	span := end - first + 1 - int64(len(p))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		n, err := bl.ReadAt(p, first+i%span)
		if err != nil || n != len(p) {
			b.Fatalf("ReadAt: %d, %v", n, err)
		}
		i += 4099
	}
}
