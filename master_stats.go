package psync

import (
	"slices"
	"time"
)

// MasterStats is a point-in-time view of a Master, with Redis's INFO
// replication figures.
type MasterStats struct {
	Role         string // "master"
	ReplID       ReplID
	ReplID2      ReplID
	SecondOffset int64
	Offset       int64
	BacklogSize  int
	BacklogFirst int64
	BacklogLen   int
	// Retained is the part of BacklogLen kept beyond BacklogSize for
	// replicas further behind than the backlog (bounded by MaxLag).
	Retained int64
	// FullSyncs, PartialOK and PartialErr are INFO's sync_full,
	// sync_partial_ok and sync_partial_err.
	FullSyncs  int64
	PartialOK  int64
	PartialErr int64
	// BytesSent and BytesReceived count what crossed every replica link.
	BytesSent     int64
	BytesReceived int64
	// LastFullSync is how long the last full resync took, from the request to
	// the end of the snapshot.
	LastFullSync time.Duration
	// WriteRate is the stream's growth in bytes per second, over the last
	// window of at least a second between Stats calls (or since NewMaster).
	// WriteRate × LastFullSync is the backlog a replica needs to get through
	// a full resync on a single link (as Redis replicas do).
	WriteRate float64
	// BacklogNeeded is the backlog size that would have let the last replica
	// refused a partial resync (its offset had left the backlog) continue.
	BacklogNeeded int64
	Replicas      []ReplicaLinkStats
}

// ReplicaLinkStats describes one replica link on the master.
type ReplicaLinkStats struct {
	ID   int
	Addr string
	// ListeningPort and IPAddress are what the replica announced with
	// REPLCONF (0 and "" if it did not).
	ListeningPort int
	IPAddress     string
	// State is handshake, wait_bgsave, send_bulk or online.
	State string
	// AckOffset is the last offset the replica acknowledged (-1 before any).
	AckOffset int64
	// SentOffset is the offset of the last stream byte sent to it.
	SentOffset int64
	// Lag is the master offset minus AckOffset, in bytes.
	Lag int64
	// AckAge is the time since its last ACK.
	AckAge time.Duration
}

// Stats returns the master's figures and one entry per replica link.
func (m *Master) Stats() MasterStats {
	m.mu.Lock()
	st := m.stateLocked()
	links := make([]*link, 0, len(m.links))
	for l := range m.links {
		links = append(links, l)
	}
	m.mu.Unlock()
	s := MasterStats{
		Role: "master", ReplID: st.ReplID, ReplID2: st.ReplID2, SecondOffset: st.SecondOffset,
		Offset: st.Offset, BacklogSize: m.backlog.Size(), BacklogFirst: st.BacklogFirst,
		BacklogLen: int(st.Offset - st.BacklogFirst + 1), Retained: m.backlog.Retained(),
		FullSyncs: m.fullSyncs.Load(), PartialOK: m.partialOK.Load(), PartialErr: m.partialErr.Load(),
		BytesSent: m.bytesSent.Load(), BytesReceived: m.bytesRecv.Load(), LastFullSync: time.Duration(m.lastFull.Load()),
		WriteRate: m.writeRate(), BacklogNeeded: m.needed.Load(),
	}
	now := time.Now().UnixNano()
	for _, l := range links {
		ack := l.ack.Load()
		r := ReplicaLinkStats{
			ID: l.id, Addr: l.addr, ListeningPort: l.info.ListeningPort, IPAddress: l.info.IPAddress,
			State: stateNames[l.state.Load()], AckOffset: ack, SentOffset: l.sent.Load(),
			Lag: st.Offset - ack,
		}
		if t := l.ackTime.Load(); t != 0 {
			r.AckAge = time.Duration(now - t)
		}
		s.Replicas = append(s.Replicas, r)
	}
	slices.SortFunc(s.Replicas, func(a, b ReplicaLinkStats) int { return a.ID - b.ID })
	return s
}

// writeRate returns the stream's bytes per second over the last window of at
// least a second, or over the current window until one closes.
func (m *Master) writeRate() float64 {
	m.rateMu.Lock()
	defer m.rateMu.Unlock()
	now, off := time.Now(), m.backlog.Offset()
	el := now.Sub(m.rateT).Seconds()
	if el >= 1 {
		m.rate = float64(off-m.rateOff) / el
		m.rateT, m.rateOff = now, off
		return m.rate
	}
	if m.rate == 0 && el > 0 {
		return float64(off-m.rateOff) / el
	}
	return m.rate
}
