package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/psyncio/psync"
)

// BenchmarkStreamingSet is redis-benchmark's streaming load in-process:
// clients send pipelines of 64 SETs of 100-byte values over a million keys
// to a master, with and without a kvserver replica attached. ns/op is per
// SET on the master, whose SETs take ns/op (the replica's catch-up is not waited for).
func BenchmarkStreamingSet(b *testing.B) {
	for _, replicas := range []int{0, 1} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("replicas=%d/clients=%d", replicas, clients), func(b *testing.B) {
				benchmarkStreamingSet(b, replicas, clients)
			})
		}
	}
}

func benchmarkStreamingSet(b *testing.B, replicas, clients int) {
	const pipeline = 64
	m := startBenchServer(b)
	if replicas > 0 {
		r := startBenchServer(b, "--replicaof", "127.0.0.1 "+strconv.Itoa(m.port))
		deadline := time.Now().Add(10 * time.Second)
		for r.replica.r.Stats().State != "connected" {
			if time.Now().After(deadline) {
				b.Fatal("replica link not up")
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Pre-encoded pipelines, so the clients cost little.
	rng := rand.New(rand.NewPCG(1, 2))
	val := bytes.Repeat([]byte("x"), 100)
	pipes := make([][]byte, 64)
	for i := range pipes {
		var p []byte
		for range pipeline {
			key := fmt.Sprintf("key:%012d", rng.IntN(1_000_000))
			p = psync.AppendCommand(p, []byte("SET"), []byte(key), val)
		}
		pipes[i] = p
	}
	conns := make([]net.Conn, clients)
	for i := range conns {
		nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(m.port))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	reply := len("+OK\r\n") * pipeline
	b.SetBytes(int64(len(pipes[0]) / pipeline))
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + pipeline*clients - 1) / (pipeline * clients)
	for i, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, reply)
			for j := range per {
				if _, err := nc.Write(pipes[(i+j)%len(pipes)]); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(nc, buf); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

// startBenchServer starts a kvserver on a free port for a benchmark.
func startBenchServer(b *testing.B, args ...string) *testServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg, err := parseArgs(append([]string{"--port", strconv.Itoa(port), "--repl-backlog-size", "256mb"}, args...))
	if err != nil {
		b.Fatal(err)
	}
	s, err := newServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	b.Cleanup(func() { s.Close() })
	return &testServer{server: s, port: port}
}
