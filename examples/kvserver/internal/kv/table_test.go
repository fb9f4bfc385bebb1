package kv

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkTable asserts that t holds exactly the entries of want, by lookup
// and by iteration.
func checkTable(t *testing.T, tb *keyTable, want map[string]*object, msg string) {
	t.Helper()
	require.Equal(t, len(want), tb.len(), msg)
	got := map[string]*object{}
	for k, o := range tb.all() {
		_, dup := got[k]
		require.False(t, dup, "%s: %q yielded twice", msg, k)
		got[k] = o
	}
	require.Equal(t, len(want), len(got), msg)
	for k, o := range want {
		require.Same(t, o, tb.get(k), "%s: get(%q)", msg, k)
		require.Same(t, o, got[k], "%s: all() at %q", msg, k)
		require.Equal(t, k, o.key, msg)
	}
}

// TestKeyTableModel runs random puts, deletes, lookups, clones and
// reserves against a Go map, through many growths (each one incremental),
// checking the whole table after every few operations. Keys come from a
// small space so that replacements, deletions of present keys and long
// probe chains (with backward shifts across the table's end) all happen.
func TestKeyTableModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		var tb keyTable
		want := map[string]*object{}
		type frozen struct {
			tb   *keyTable
			want map[string]*object
		}
		var clones []frozen
		space := 50 + rng.IntN(3000)
		for op := range 6000 {
			k := fmt.Sprint("k", rng.IntN(space))
			switch r := rng.IntN(100); {
			case r < 55:
				o := &object{}
				tb.put(k, o)
				want[k] = o
			case r < 85:
				_, had := want[k]
				assert.Equal(t, had, tb.del(k), "seed %d op %d: del(%q)", seed, op, k)
				delete(want, k)
			case r < 98:
				assert.Same(t, want[k], tb.get(k), "seed %d op %d: get(%q)", seed, op, k)
			case r < 99:
				c := tb.clone()
				clones = append(clones, frozen{&c, maps.Clone(want)})
			default:
				if len(want) == 0 {
					tb = keyTable{}
					tb.reserve(rng.IntN(5000))
				}
			}
			if op%97 == 0 {
				checkTable(t, &tb, want, fmt.Sprintf("seed %d op %d", seed, op))
			}
		}
		checkTable(t, &tb, want, fmt.Sprintf("seed %d end", seed))
		for i, c := range clones {
			checkTable(t, c.tb, c.want, fmt.Sprintf("seed %d clone %d", seed, i))
		}
	}
}

// TestKeyTableGrowthIsIncremental checks that a growth moves the old
// table over a few slots per write rather than all at once, and that
// lookups see every key meanwhile.
func TestKeyTableGrowthIsIncremental(t *testing.T) {
	var tb keyTable
	want := map[string]*object{}
	sawGrowth := false
	for i := range 100_000 {
		k := fmt.Sprint("key:", i)
		o := &object{}
		tb.put(k, o)
		want[k] = o
		if tb.old != nil {
			sawGrowth = true
			require.LessOrEqual(t, tb.next, (len(tb.old)/ktMoves+1)*ktMoves, "a growth moved everything at once")
			if tb.oldN > 0 && i%1000 == 0 {
				checkTable(t, &tb, want, fmt.Sprint("during growth at ", i))
			}
		}
	}
	require.True(t, sawGrowth)
	checkTable(t, &tb, want, "end")
	assert.LessOrEqual(t, tb.len()*4, len(tb.slots)*3+len(tb.old)*3)
}

// TestKeyTablePutKeepsKeyString checks put's rule for object.key: it is
// the table's string when the key is present, the object's own when equal,
// and otherwise a copy that does not share the caller's bytes.
func TestKeyTablePutKeepsKeyString(t *testing.T) {
	var tb keyTable
	b := []byte("mutable")
	o1 := &object{}
	tb.put(bstr(b), o1)
	b[0] = 'X' // the caller reuses its buffer
	require.Equal(t, "mutable", o1.key)
	require.Same(t, o1, tb.get("mutable"))
	assert.Nil(t, tb.get("Xutable"))

	o2 := &object{}
	tb.put("mutable", o2)
	assert.Same(t, o2, tb.get("mutable"))
	assert.Equal(t, "mutable", o2.key)
	assert.Equal(t, 1, tb.len())

	own := "arena-key"
	o3 := &object{key: own}
	tb.put(own, o3)
	assert.Equal(t, own, o3.key)
	assert.True(t, tb.del("arena-key"))
	assert.False(t, tb.del("arena-key"))
	assert.Nil(t, tb.get(""))
	tb.put("", &object{})
	assert.NotNil(t, tb.get(""), "the empty key is a key")
}

// BenchmarkKeyTableSet sets 100 random keys of a million per op, as a
// replica applying redis-benchmark's stream does, against a Go map.
func BenchmarkKeyTableSet(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 1<<20)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%012d", rng.IntN(benchKeys))
	}
	b.Run("table", func(b *testing.B) {
		var tb keyTable
		for i := 0; b.Loop(); i++ {
			if i&(len(keys)-1) == 0 {
				tb = keyTable{}
			}
			k := keys[i&(len(keys)-1)]
			if tb.get(k) == nil {
				tb.put(k, &object{})
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		var m map[string]*object
		for i := 0; b.Loop(); i++ {
			if i&(len(keys)-1) == 0 {
				m = map[string]*object{}
			}
			k := keys[i&(len(keys)-1)]
			if m[k] == nil {
				m[k] = &object{key: k}
			}
		}
	})
}

// TestPrefetchChangesNothing feeds Prefetch every shape of input, around
// real keys, and checks that the dataset is untouched.
func TestPrefetchChangesNothing(t *testing.T) {
	s := New(Options{})
	var c Client
	for i := range 100 {
		require.Equal(t, "+OK\r\n", run(s, &c, fmt.Sprintf("SET k%d v%d", i, i)))
	}
	run(s, &c, "RPUSH l a b")
	before := s.Digest()
	cmds := [][][]byte{
		nil,
		{[]byte("PING")},
		{[]byte("SET"), []byte("k1"), []byte("x")},
		{[]byte("SET"), []byte("absent"), []byte("x")},
		{[]byte("GET"), []byte("l")},
		{[]byte("SET"), []byte(""), []byte("x")},
	}
	for range PrefetchWindow {
		cmds = append(cmds, [][]byte{[]byte("GET"), []byte("k2")})
	}
	s.BeginApply()
	for _, db := range []int{-1, 0, 1, 16, 1 << 30} {
		s.Prefetch(db, cmds)
		s.Prefetch(db, nil)
	}
	s.EndApply()
	assert.Equal(t, before, s.Digest())
	assert.Equal(t, 101, s.DBSize(0))
}
