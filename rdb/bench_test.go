package rdb

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// benchEntries returns 200,000 string keys with 100 random bytes each and
// 200 hashes of 500 fields, the shape of the baseline measurements.
var benchEntries = sync.OnceValue(func() []*Entry {
	rng := rand.New(rand.NewPCG(9, 9))
	es := make([]*Entry, 0, 200_200)
	for i := range 200_000 {
		es = append(es, &Entry{Key: fmt.Appendf(nil, "key:%012d", i), String: randBytes(rng, 100), Idle: -1, Freq: -1})
	}
	for i := range 200 {
		e := &Entry{Key: fmt.Appendf(nil, "hash:%d", i), Kind: KindHash, Idle: -1, Freq: -1}
		for j := range 500 {
			e.Hash = append(e.Hash, HashField{fmt.Appendf(nil, "field:%d", j), randBytes(rng, 20)})
		}
		es = append(es, e)
	}
	return es
})

var benchFile = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{Aux: []AuxField{{"redis-ver", "7.0.15"}}})
	_ = w.SelectDB(0, uint64(len(benchEntries())), 0)
	for _, e := range benchEntries() {
		_ = w.WriteEntry(e)
	}
	_ = w.Close()
	return buf.Bytes()
})

func BenchmarkDecode(b *testing.B) { benchDecode(b, ReaderOptions{}) }

// BenchmarkDecodeNoChecksum measures decoding alone.
func BenchmarkDecodeNoChecksum(b *testing.B) { benchDecode(b, ReaderOptions{SkipChecksum: true}) }

func benchDecode(b *testing.B, opt ReaderOptions) {
	data := benchFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), opt)
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != len(benchEntries()) {
			b.Fatalf("decoded %d keys", n)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	es := benchEntries()
	b.SetBytes(int64(len(benchFile())))
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, WriterOptions{Aux: []AuxField{{"redis-ver", "7.0.15"}}})
		if err != nil {
			b.Fatal(err)
		}
		_ = w.SelectDB(0, uint64(len(es)), 0)
		for _, e := range es {
			if err := w.WriteEntry(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRC64(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		CRC64(0, data)
	}
}
