package psync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// This file holds the master side of a full resync: one snapshot shared by
// the replicas that ask at about the same time, written to all of them.

// fullSync is one snapshot shared by the replicas that asked for a full
// resync at about the same time.
type fullSync struct {
	links   []*link
	legacy  map[*link]bool
	started bool
}

type fullSyncResult struct {
	offset int64
	eof    bool
	err    error
}

func (m *Master) joinFullSync(l *link, legacy bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		l.syncResult <- fullSyncResult{err: ErrClosed}
		return
	}
	s := m.session
	if s == nil {
		s = &fullSync{legacy: make(map[*link]bool)}
		m.session = s
		m.wg.Add(1)
		go m.runFullSync(s)
	}
	s.links = append(s.links, l)
	s.legacy[l] = legacy
}

var keepalive = []byte{'\n'}

func (m *Master) runFullSync(s *fullSync) {
	defer m.wg.Done()
	// Keep waiting replicas alive with newlines while the snapshot is
	// prepared, as Redis does.
	kaStop := make(chan struct{})
	kaDone := make(chan struct{})
	go func() {
		defer close(kaDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-kaStop:
				return
			case <-t.C:
				m.mu.Lock()
				links := append([]*link(nil), s.links...)
				m.mu.Unlock()
				for _, l := range links {
					_ = l.write(keepalive)
				}
			}
		}
	}()
	stopKeepalive := func() {
		if kaStop != nil {
			close(kaStop)
			<-kaDone
			kaStop = nil
		}
	}
	defer stopKeepalive()

	if d := m.cfg.FullSyncDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-m.ctx.Done():
		}
	}
	m.mu.Lock()
	s.started = true
	if m.session == s {
		m.session = nil
	}
	links := s.links
	replid := m.replid
	m.mu.Unlock()

	fail := func(err error) {
		for _, l := range links {
			l.syncResult <- fullSyncResult{err: err}
		}
	}
	snap, err := m.cfg.Snapshotter.Snapshot(m.ctx)
	if err != nil {
		fail(fmt.Errorf("psync: snapshot: %w", err))
		return
	}
	defer snap.Release()
	off := snap.Offset()
	if off > m.backlog.Offset() {
		// On a replica serving sub-replicas, the host records a command's
		// offset when it applies it, and psync writes the command to the
		// backlog just after: let the backlog catch up.
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
		_ = m.backlog.notify.wait(ctx, func() bool { return m.backlog.Offset() >= off })
		cancel()
	}
	if !m.backlog.Covers(off + 1) {
		fail(fmt.Errorf("%w: snapshot offset %d not followed by the backlog [%d, %d]; is the host feeding under its snapshot lock?",
			ErrNotInBacklog, off, m.backlog.First(), m.backlog.Offset()))
		return
	}
	ready := links[:0:0]
	for _, l := range links {
		// From now on the stream after the snapshot is kept for the link
		// (up to MaxLag) while the snapshot is on its way.
		if _, err := l.openCursor(off + 1); err != nil {
			l.syncResult <- fullSyncResult{err: err}
			continue
		}
		l.state.Store(stateSendBulk)
		ready = append(ready, l)
	}
	links = ready
	if len(links) == 0 {
		return
	}
	m.log.Info("snapshot captured", "offset", off, "replicas", len(links))

	size := int64(-1)
	var src interface {
		WriteTo(io.Writer) (int64, error)
	} = snap
	if sz, ok := snap.(SnapshotSizer); ok {
		size = sz.Len()
	} else {
		allEOF := true
		for _, l := range links {
			allEOF = allEOF && l.info.CapaEOF
		}
		if !allEOF {
			f, n, err := m.spool(snap)
			if err != nil {
				fail(err)
				return
			}
			defer func() { f.Close(); os.Remove(f.Name()) }()
			size, src = n, fileSource{f}
		}
	}
	stopKeepalive()

	var mark []byte
	if size < 0 {
		mark = newEOFMark()
	}
	fo := &fanout{}
	for _, l := range links {
		var hdr []byte
		if !s.legacy[l] {
			hdr = appendFullResync(hdr, replid, off)
		}
		hdr = appendSnapshotHeader(hdr, size, mark)
		if err := l.write(hdr); err != nil {
			l.syncResult <- fullSyncResult{err: err}
			continue
		}
		fo.links = append(fo.links, l)
		fo.errs = append(fo.errs, nil)
	}
	n, err := src.WriteTo(fo)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("%w: snapshot wrote %d bytes, announced %d", ErrSnapshotLength, n, size)
	}
	if err == nil && mark != nil {
		_, err = fo.Write(mark)
	}
	for i, l := range fo.links {
		e := fo.errs[i]
		if e == nil && err != nil {
			e = fmt.Errorf("psync: writing snapshot: %w", err)
		}
		l.syncResult <- fullSyncResult{offset: off, eof: mark != nil, err: e}
	}
	m.log.Info("snapshot sent", "offset", off, "bytes", n, "replicas", len(fo.links), "err", err)
}

type fileSource struct{ f *os.File }

func (s fileSource) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, s.f) }

// spool writes a snapshot of unknown size to a temporary file to learn its
// size, for replicas that need the $<len> framing.
func (m *Master) spool(snap Snapshot) (*os.File, int64, error) {
	f, err := os.CreateTemp(m.cfg.TempDir, "psync-snapshot-*")
	if err != nil {
		return nil, 0, fmt.Errorf("psync: spooling snapshot: %w", err)
	}
	n, err := snap.WriteTo(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("psync: spooling snapshot: %w", err)
	}
	return f, n, nil
}

// fanout writes a snapshot to every replica sharing it. A replica whose write
// fails is dropped from the set; the others go on. It fails only when none is
// left.
type fanout struct {
	links []*link
	errs  []error
}

func (f *fanout) Write(p []byte) (int, error) {
	alive := 0
	for i, l := range f.links {
		if f.errs[i] != nil {
			continue
		}
		if err := l.write(p); err != nil {
			f.errs[i] = err
			continue
		}
		alive++
	}
	if alive == 0 {
		return 0, errors.New("every replica of the snapshot failed")
	}
	return len(p), nil
}
