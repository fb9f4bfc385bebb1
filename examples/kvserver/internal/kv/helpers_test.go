package kv

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
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

// run runs a command line and returns the reply as a string.
func run(s *Store, c *Client, line string) string {
	return string(s.Exec(c, args(line), nil))
}

// recorder collects propagated commands as space-joined lines.
type recorder struct{ lines []string }

func (r *recorder) hook(db int, argv [][]byte) {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = string(a)
	}
	r.lines = append(r.lines, fmt.Sprintf("%d %s", db, strings.Join(parts, " ")))
}

func (r *recorder) take() []string {
	l := r.lines
	r.lines = nil
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
