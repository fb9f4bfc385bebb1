package psync

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// This file holds the replica side of a full resync: loading the snapshot
// through the host's Loader, and the second link that streams from the
// snapshot's offset into a loadBuffer meanwhile.

// sideLink is the second link of a full resync: it continues from the
// snapshot's offset while the snapshot loads, into a loadBuffer.
type sideLink struct {
	link    *replLink
	buf     *loadBuffer
	reader  *CommandReader // reads the buffer, then the link
	stop    chan struct{}  // ends the ACKs sent during the load
	handoff atomic.Bool
	pumped  chan struct{}
}

// openSide dials the second link and asks to continue at the snapshot's
// offset. It returns nil (and the replica falls back to one link) when the
// master does not continue partially.
func (r *Replica) openSide(ctx context.Context, at Position) *sideLink {
	conn, err := r.cfg.Dial(ctx)
	if err != nil {
		r.log.Warn("full resync: second link not dialed; the stream will follow the snapshot", "err", err)
		return nil
	}
	l := r.openLink(ctx, conn)
	cr := newCommandReader(l.reader(), r.cfg.Limits, false, 4<<10)
	reply, err := r.handshake(l, cr, &at)
	if err == nil && (reply.full || reply.id != "" && reply.id != at.ID) {
		err = fmt.Errorf("%w: master did not continue at %v", ErrUnexpectedReply, at)
	}
	if err != nil {
		l.close()
		r.log.Warn("full resync: second link refused; the stream will follow the snapshot", "err", err)
		return nil
	}
	memLimit := r.cfg.LoadBufferSize
	if r.cfg.LoadBufferDir != "" {
		memLimit = min(memLimit, 16<<20)
	}
	s := &sideLink{link: l, buf: newLoadBuffer(r.cfg.LoadBufferSize, memLimit, r.cfg.LoadBufferDir), stop: make(chan struct{}), pumped: make(chan struct{})}
	_ = s.buf.write(cr.Buffered())
	go s.pump()
	go l.ackEvery(s.stop, func() int64 { return at.Offset })
	s.reader = newCommandReader(&handoffReader{buf: s.buf, link: l.reader()}, r.cfg.Limits, false, 256<<10)
	r.log.Info("full resync: streaming on a second link while the snapshot loads", "offset", at.Offset)
	return s
}

// pump copies the link into the buffer until it is handed off or fails.
func (s *sideLink) pump() {
	defer close(s.pumped)
	rd := s.link.reader()
	p := make([]byte, 64<<10)
	for {
		n, err := rd.Read(p)
		if n > 0 {
			if werr := s.buf.write(p[:n]); werr != nil {
				s.buf.finish(werr)
				s.link.cancel(werr)
				return
			}
		}
		if err != nil {
			s.buf.finish(s.link.cause(err))
			return
		}
		if s.handoff.Load() {
			s.buf.finish(errHandedOff)
			return
		}
	}
}

// live ends the load phase: ACKs now come from the stream loop, and the
// reader switches from the buffer to the link once the buffer is drained.
func (s *sideLink) live() {
	close(s.stop)
	s.handoff.Store(true)
}

func (s *sideLink) abort() {
	s.link.close()
	<-s.pumped
	s.buf.close()
}

func (r *Replica) fullSync(ctx context.Context, l *replLink, cr *CommandReader, reply psyncReply) (side *sideLink, err error) {
	r.state.Store(replStateTransfer)
	start := time.Now()
	r.log.Info("full resync", "replid", reply.id, "offset", reply.offset)
	if !r.cfg.SingleLink {
		side = r.openSide(ctx, Position{ID: reply.id, Offset: reply.offset})
		defer func() {
			if err != nil && side != nil {
				side.abort()
			}
		}()
	}
	size, mark, err := cr.readSnapshotHeader(r.cfg.MaxSnapshotSize)
	if err != nil {
		return nil, err
	}
	var src framedReader
	if mark != nil {
		src = &eofReader{c: cr, mark: mark}
	} else {
		src = &lenReader{c: cr, left: size}
	}
	info := SnapshotInfo{ReplID: reply.id, Offset: reply.offset, Size: size}
	loaded, err := r.cfg.Loader.Load(l.ctx, src, info)
	if err != nil {
		// A transfer that failed is the cause; the loader only saw its end.
		if c := context.Cause(l.ctx); c != nil {
			return nil, fmt.Errorf("%w (loader: %v)", c, err)
		}
		if ferr := src.framingErr(); ferr != nil {
			return nil, fmt.Errorf("%w (loader: %v)", ferr, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	// Whatever the loader left unread must still arrive (and the EOF mark
	// match) before the new dataset goes live.
	if n, err := io.Copy(io.Discard, src); err != nil {
		loaded.Discard()
		return nil, err
	} else if n > 0 {
		r.log.Warn("loader left snapshot bytes unread", "bytes", n)
	}
	loaded.Commit()
	r.fullSyncs.Add(1)
	r.lastFull.Store(int64(time.Since(start)))
	r.mu.Lock()
	r.replid, r.replid2, r.secondOffset = reply.id, NoReplID, -1
	r.offset.Store(reply.offset)
	r.readOffset.Store(reply.offset)
	r.mu.Unlock()
	if m := r.cfg.Master; m != nil {
		m.resetHistory(reply.id, reply.offset)
	}
	r.offsetWake.wake()
	r.log.Info("snapshot loaded", "offset", reply.offset, "took", time.Since(start).Round(time.Millisecond))
	if side != nil {
		side.live()
		return side, nil
	}
	if mark != nil {
		// A master that sent a diskless snapshot waits for this ACK before
		// it streams (Redis does too).
		return nil, l.sendAck()
	}
	return nil, nil
}
