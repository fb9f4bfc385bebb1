package kv

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/psyncio/psync/rdb"
)

// cpuTime returns the CPU time the process used so far (all threads, GC
// included): on a shared machine it varies less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start as cpu-ms/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// The full-resync and streaming paths at the size of bench/compare: a
// million keys of 100 random bytes.

const benchKeys = 1_000_000

func benchValue(rng *rand.Rand) []byte {
	v := make([]byte, 100)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

// benchStore is a store holding benchKeys string keys.
var benchStore = sync.OnceValue(func() *Store {
	s := New(Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	var c Client
	for i := range benchKeys {
		s.Exec(&c, [][]byte{[]byte("SET"), fmt.Appendf(nil, "key:%012d", i), benchValue(rng)}, nil)
	}
	return s
})

// benchRDB is an RDB file of benchKeys string keys, written directly (no
// Store), so that loading it can be profiled without the setup's garbage.
var benchRDB = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	w, err := rdb.NewWriter(&buf, rdb.WriterOptions{})
	if err != nil {
		panic(err)
	}
	_ = w.SelectDB(0, benchKeys, 0)
	e := rdb.Entry{Idle: -1, Freq: -1}
	for i := range benchKeys {
		e.Key = fmt.Appendf(e.Key[:0], "key:%012d", i)
		e.String = benchValue(rng)
		if err := w.WriteEntry(&e); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

// BenchmarkWriteRDB writes a snapshot of a million keys, as a master does
// for a full resync.
func BenchmarkWriteRDB(b *testing.B) {
	s := benchStore()
	b.SetBytes(int64(len(benchRDB())))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		sn := s.Snapshot(nil)
		if _, err := sn.WriteRDB(io.Discard, nil); err != nil {
			b.Fatal(err)
		}
		sn.Release()
	}
}

// BenchmarkLoadRDB loads a million keys from RDB into a new Dataset, as a
// replica does for a full resync.
func BenchmarkLoadRDB(b *testing.B) {
	data := benchRDB()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		d, err := LoadRDB(bytes.NewReader(data), LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		_ = d
		if d.DBSize(0) != benchKeys {
			b.Fatalf("loaded %d keys", d.DBSize(0))
		}
	}
}

// BenchmarkLoadReserved is BenchmarkLoadRDB with the key count known in
// advance (Dataset.Reserve), as an RDB's RESIZEDB hint gives it.
func BenchmarkLoadReserved(b *testing.B) {
	data := benchRDB()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		d := NewDataset(16)
		d.Reserve(0, benchKeys, 0)
		rd := rdb.NewReader(bytes.NewReader(data), rdb.ReaderOptions{})
		for {
			e, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		if d.DBSize(0) != benchKeys {
			b.Fatalf("loaded %d keys", d.DBSize(0))
		}
	}
}

// BenchmarkApplySet applies SETs of 100 B to random keys among a million,
// as a replica applies redis-benchmark's stream.
func BenchmarkApplySet(b *testing.B) {
	s := New(Options{})
	s.SetReadOnly(true)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1 << 16
	cmds := make([][][]byte, n)
	for i := range cmds {
		cmds[i] = [][]byte{[]byte("SET"), fmt.Appendf(nil, "key:%012d", rng.IntN(benchKeys)), benchValue(rng)}
	}
	var c Client
	b.ReportAllocs()
	defer reportCPU(b, cpuTime())
	i := 0
	for b.Loop() {
		if err := s.Apply(&c, cmds[i&(n-1)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkApplySetStream applies a stream of SETs of 100 B to random keys
// among a million, each command to a different key drawn afresh (so the
// keyspace grows to about 630k keys over the first million and then stays
// there, and lookups miss the CPU cache as a replica's do under
// redis-benchmark -r 1000000), one command at a time ("single") and in
// windows of PrefetchWindow after Prefetch, as kvserver's replica applies
// a batch ("prefetched").
func BenchmarkApplySetStream(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 1 << 20
	cmds := make([][][]byte, n)
	for i := range cmds {
		cmds[i] = [][]byte{[]byte("SET"), fmt.Appendf(nil, "key:%012d", rng.IntN(benchKeys)), benchValue(rng)}
	}
	for _, prefetch := range []bool{false, true} {
		name := "single"
		if prefetch {
			name = "prefetched"
		}
		b.Run(name, func(b *testing.B) {
			s := New(Options{})
			s.SetReadOnly(true)
			var c Client
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			s.BeginApply()
			defer s.EndApply()
			i := 0
			for b.Loop() {
				j := i & (n - 1)
				if prefetch && j%PrefetchWindow == 0 {
					s.Prefetch(c.DB, cmds[j:])
				}
				if err := s.ApplyLocked(&c, cmds[j], nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkGCWithKeyspace measures one full garbage collection (ns/op)
// while a store of benchKeys string keys, set by SET, is live: the marking
// work a store's keyspace puts on every GC cycle, which is what makes a
// replica fall behind while its collector runs (bench/compare/notes.md).
func BenchmarkGCWithKeyspace(b *testing.B) {
	s := benchStore()
	runtime.GC()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(s)
}
