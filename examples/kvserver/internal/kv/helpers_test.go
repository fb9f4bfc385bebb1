package kv

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/psyncio/psync"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Millis() int64 { return c.Now().UnixMilli() }

// args splits a command line on spaces; "" stands for an empty argument.
func args(line string) [][]byte {
	var argv [][]byte
	for _, f := range strings.Fields(line) {
		if f == `""` {
			f = ""
		}
		argv = append(argv, []byte(f))
	}
	return argv
}

// run runs a command line, sent as a client sends it (RESP, so the store
// may propagate the client's bytes), and returns the reply as a string.
func run(s *Store, c *Client, line string) string {
	argv := args(line)
	return string(s.ExecCommand(c, psync.Command{Args: argv, Raw: psync.AppendCommand(nil, argv...)}, nil))
}

// recorder collects propagated commands as space-joined lines, and the
// lines that came with raw bytes. A raw that is not argv's encoding is
// recorded as a line of its own, so the test comparing lines fails.
type recorder struct{ lines, raws []string }

func (r *recorder) hook(db int, argv [][]byte, raw []byte) {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = string(a)
	}
	line := fmt.Sprintf("%d %s", db, strings.Join(parts, " "))
	if raw != nil {
		if want := psync.AppendCommand(nil, argv...); !bytes.Equal(raw, want) {
			r.lines = append(r.lines, fmt.Sprintf("raw %q is not argv's encoding %q", raw, want))
		}
		r.raws = append(r.raws, line)
	}
	r.lines = append(r.lines, line)
}

func (r *recorder) take() []string {
	l := r.lines
	r.lines, r.raws = nil, nil
	return l
}

// readReply reads one whole RESP2 reply and returns its bytes.
func readReply(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("short line %q", line)
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return line, nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(r, buf); err != nil {
			return nil, err
		}
		return append(line, buf...), nil
	case '*':
		n, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return nil, err
		}
		out := line
		for range max(n, 0) {
			sub, err := readReply(r)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
