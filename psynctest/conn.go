package psynctest

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/psyncio/psync"
)

// ErrCut is returned by a Conn's Read or Write once it has been cut.
var ErrCut = errors.New("psynctest: link cut")

// Conn wraps a net.Conn so a test can cut or stall the link, now or at a
// chosen byte of what is read through it. All methods are safe for
// concurrent use.
type Conn struct {
	net.Conn

	mu      sync.Mutex
	cond    *sync.Cond
	read    int64
	written int64
	cutAt   int64 // cut once this many bytes were read; -1 none
	stallAt int64 // stall once this many bytes were read; -1 none
	stalled bool
	cut     bool
}

// Wrap returns c wrapped.
func Wrap(c net.Conn) *Conn {
	w := &Conn{Conn: c, cutAt: -1, stallAt: -1}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// Read reads from the link, honouring cuts and stalls.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	for {
		if c.cut {
			c.mu.Unlock()
			return 0, ErrCut
		}
		if c.stallAt >= 0 && c.read >= c.stallAt {
			c.stalled, c.stallAt = true, -1
		}
		if !c.stalled {
			break
		}
		c.cond.Wait()
	}
	limit := int64(len(p))
	if c.cutAt >= 0 && c.cutAt-c.read < limit {
		limit = c.cutAt - c.read
	}
	if c.stallAt >= 0 && c.stallAt-c.read < limit {
		limit = c.stallAt - c.read
	}
	c.mu.Unlock()
	if limit <= 0 {
		c.Cut()
		return 0, ErrCut
	}
	n, err := c.Conn.Read(p[:limit])
	c.mu.Lock()
	c.read += int64(n)
	if c.cutAt >= 0 && c.read >= c.cutAt {
		c.mu.Unlock()
		c.Cut()
		return n, nil
	}
	c.mu.Unlock()
	return n, err
}

// Write writes to the link unless it is cut; a stalled link blocks writers
// too.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.stalled && !c.cut {
		c.cond.Wait()
	}
	if c.cut {
		c.mu.Unlock()
		return 0, ErrCut
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.written += int64(n)
	c.mu.Unlock()
	return n, err
}

// Cut closes the link now: both ends see it fail.
func (c *Conn) Cut() {
	c.mu.Lock()
	c.cut = true
	c.stalled = false
	c.cond.Broadcast()
	c.mu.Unlock()
	c.Conn.Close()
}

// CutAfterRead cuts the link once n bytes in total have been read through it.
func (c *Conn) CutAfterRead(n int64) {
	c.mu.Lock()
	c.cutAt = n
	c.mu.Unlock()
}

// StallAfterRead stops reads and writes once n bytes in total have been read,
// until Resume.
func (c *Conn) StallAfterRead(n int64) {
	c.mu.Lock()
	c.stallAt = n
	c.mu.Unlock()
}

// Stall stops reads and writes now, until Resume.
func (c *Conn) Stall() {
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
}

// Resume ends a stall.
func (c *Conn) Resume() {
	c.mu.Lock()
	c.stalled = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close closes the link and wakes stalled callers.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.cut = true
	c.stalled = false
	c.cond.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}

// Closed reports whether the link was cut or closed.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// BytesRead returns the bytes read through the wrapper.
func (c *Conn) BytesRead() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read
}

// BytesWritten returns the bytes written through the wrapper.
func (c *Conn) BytesWritten() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

// Pipe returns the two ends of an in-memory, synchronous link (net.Pipe),
// each wrapped.
func Pipe() (*Conn, *Conn) {
	a, b := net.Pipe()
	return Wrap(a), Wrap(b)
}

// Dialer connects replicas to a Master in-process: each Dial makes a pipe,
// runs Master.Serve on one end and returns the other, wrapped. Tests use
// Conns to cut or stall the current link.
type Dialer struct {
	m      *psync.Master
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*Conn
	// OnDial, if set, is called with each new replica-side Conn before it is
	// returned, e.g. to arm CutAfterRead.
	OnDial func(*Conn)
	errs   []error
	closed bool

	ln net.Listener // with NewTCPDialer: the master's listener on 127.0.0.1
}

// NewDialer returns a Dialer for m. Close it to stop its Serve goroutines.
func NewDialer(m *psync.Master) *Dialer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Dialer{m: m, ctx: ctx, cancel: cancel}
}

// NewTCPDialer is NewDialer over real TCP connections on 127.0.0.1: it
// listens on a free port and serves every accepted connection with m.Serve.
func NewTCPDialer(m *psync.Master) (*Dialer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := NewDialer(m)
	d.ln = ln
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				err := d.m.Serve(d.ctx, c)
				d.mu.Lock()
				d.errs = append(d.errs, err)
				d.mu.Unlock()
			}()
		}
	}()
	return d, nil
}

// Addr returns the TCP address replicas dial (NewTCPDialer only).
func (d *Dialer) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Dial implements psync.ReplicaConfig.Dial.
func (d *Dialer) Dial(ctx context.Context) (io.ReadWriteCloser, error) {
	if err := d.ctx.Err(); err != nil {
		return nil, err
	}
	if d.ln != nil {
		var nd net.Dialer
		nc, err := nd.DialContext(ctx, "tcp", d.ln.Addr().String())
		if err != nil {
			return nil, err
		}
		c := Wrap(nc)
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			nc.Close()
			return nil, context.Canceled
		}
		d.conns = append(d.conns, c)
		on := d.OnDial
		d.mu.Unlock()
		if on != nil {
			on(c)
		}
		return c, nil
	}
	a, b := net.Pipe()
	c := Wrap(a)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, context.Canceled
	}
	d.conns = append(d.conns, c)
	on := d.OnDial
	d.wg.Add(1) // under mu, so never concurrent with Close's Wait
	d.mu.Unlock()
	if on != nil {
		on(c)
	}
	go func() {
		defer d.wg.Done()
		err := d.m.Serve(d.ctx, b)
		d.mu.Lock()
		d.errs = append(d.errs, err)
		d.mu.Unlock()
	}()
	return c, nil
}

// Conns returns every replica-side connection dialed so far, oldest first.
func (d *Dialer) Conns() []*Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Conn(nil), d.conns...)
}

// Live returns the replica-side connections not cut or closed, oldest first.
func (d *Dialer) Live() []*Conn {
	var live []*Conn
	for _, c := range d.Conns() {
		if !c.Closed() {
			live = append(live, c)
		}
	}
	return live
}

// Last returns the most recent replica-side connection, or nil.
func (d *Dialer) Last() *Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) == 0 {
		return nil
	}
	return d.conns[len(d.conns)-1]
}

// ServeErrors returns what each finished Serve returned.
func (d *Dialer) ServeErrors() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.errs...)
}

// Close stops dialing, cuts every link and waits for the Serve goroutines.
func (d *Dialer) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	if d.ln != nil {
		d.ln.Close()
	}
	for _, c := range d.Conns() {
		c.Close()
	}
	d.wg.Wait()
}
