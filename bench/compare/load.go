package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// dataset returns the RESP bytes of n SETs of key:%012d to 100 random bytes,
// the same for every server (fixed seed).
func dataset(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 100)
	buf := make([]byte, 0, n*150)
	for i := range n {
		for j := 0; j < len(val); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(val); k++ {
				val[j+k] = byte(v >> (8 * k))
			}
		}
		buf = append(buf, "*3\r\n$3\r\nSET\r\n$16\r\n"...)
		buf = fmt.Appendf(buf, "key:%012d\r\n$100\r\n", i)
		buf = append(buf, val...)
		buf = append(buf, "\r\n"...)
	}
	return buf
}

// pipeline writes cmds (n commands) to addr over one connection while
// reading the n +OK replies concurrently, and returns the time it took.
func pipeline(addr string, cmds []byte, n int) (time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		for p := cmds; len(p) > 0; {
			k := min(len(p), 256<<10)
			if _, err := c.Write(p[:k]); err != nil {
				werr <- err
				return
			}
			p = p[k:]
		}
		werr <- nil
	}()
	want := 5 * n // "+OK\r\n" each
	buf := make([]byte, 256<<10)
	got := 0
	for got < want {
		k, err := c.Read(buf)
		if err != nil {
			return 0, fmt.Errorf("after %d reply bytes: %w", got, err)
		}
		if bytes.IndexByte(buf[:k], '-') >= 0 {
			return 0, fmt.Errorf("error reply: %q", buf[:min(k, 200)])
		}
		got += k
	}
	if err := <-werr; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// writer sends SETs to a server in batches of 100 (waiting for the replies
// of each batch) with a short pause between batches, until stopped: the
// write load under which links are killed.
type writer struct {
	stop    chan struct{}
	done    chan error
	batches atomic.Int64
}

func startWriter(addr string, pause time.Duration) (*writer, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	w := &writer{stop: make(chan struct{}), done: make(chan error, 1)}
	val := bytes.Repeat([]byte("v"), 100)
	go func() {
		defer c.Close()
		var batch []byte
		reply := make([]byte, 500)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			batch = batch[:0]
			for j := range 100 {
				batch = append(batch, "*3\r\n$3\r\nSET\r\n$16\r\nkey:"...)
				batch = fmt.Appendf(batch, "%012d", (i*100+j)%1000000)
				batch = append(batch, "\r\n$100\r\n"...)
				batch = append(batch, val...)
				batch = append(batch, "\r\n"...)
			}
			if _, err := c.Write(batch); err != nil {
				w.done <- err
				return
			}
			if _, err := io.ReadFull(c, reply); err != nil {
				w.done <- err
				return
			}
			w.batches.Add(1)
			time.Sleep(pause)
		}
	}()
	return w, nil
}

func (w *writer) Stop() error {
	close(w.stop)
	return <-w.done
}

func itoa(n int) string { return strconv.Itoa(n) }
