package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// client is a minimal RESP2 client: enough to poll INFO and DBSIZE and send
// a few administrative commands.
type client struct {
	c  net.Conn
	br *bufio.Reader
}

// errReply is a RESP error reply (-LOADING ..., -ERR ...).
type errReply string

func (e errReply) Error() string { return string(e) }

func dial(addr string) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// dialWait dials addr until it accepts or the timeout passes.
func dialWait(addr string, timeout time.Duration) (*client, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := dial(addr)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *client) Close() error { return c.c.Close() }

// do sends one command and returns its reply: string for simple and bulk
// strings, int64, []any, nil, or an errReply error.
func (c *client) do(args ...string) (any, error) {
	var b []byte
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *client) read() (any, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errReply(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}

// dbsize returns DBSIZE, or -1 while the server answers with an error (a
// Redis replica answers -LOADING while it loads its snapshot).
func (c *client) dbsize() (int64, error) {
	r, err := c.do("DBSIZE")
	var er errReply
	if errors.As(err, &er) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := r.(int64)
	return n, nil
}

// info returns the fields of INFO section as a map.
func (c *client) info(section string) (map[string]string, error) {
	r, err := c.do("INFO", section)
	if err != nil {
		return nil, err
	}
	s, _ := r.(string)
	m := make(map[string]string)
	for _, line := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

func (c *client) infoInt(section, field string) (int64, error) {
	m, err := c.info(section)
	if err != nil {
		return 0, err
	}
	v, ok := m[field]
	if !ok {
		return 0, fmt.Errorf("INFO %s has no %s", section, field)
	}
	return strconv.ParseInt(v, 10, 64)
}
