package benchutil

import (
	"context"
	"io"
	"net"
	"sync"

	"github.com/psyncio/psync"
)

// TCPServer serves a Master on a loopback TCP listener. Its connections are
// plain TCP on both ends (psynctest's Dialer wraps the replica's end, which
// costs the stream measurably). Dial and Last are safe for concurrent use.
type TCPServer struct {
	ln net.Listener

	mu   sync.Mutex
	last net.Conn
}

// ServeTCP listens on a free port of 127.0.0.1 and serves every connection
// with m.Serve until Close. Each Serve ends with its link: when the
// connection closes or m is closed.
func ServeTCP(m *psync.Master) (*TCPServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.Serve(context.Background(), c)
		}
	}()
	return &TCPServer{ln: ln}, nil
}

// Dial connects to the server; it is a psync.ReplicaConfig.Dial.
func (s *TCPServer) Dial(ctx context.Context) (io.ReadWriteCloser, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.last = c
	s.mu.Unlock()
	return c, nil
}

// Last returns the connection Dial returned last, nil before the first.
func (s *TCPServer) Last() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Close stops accepting connections; those accepted stay served.
func (s *TCPServer) Close() { s.ln.Close() }
