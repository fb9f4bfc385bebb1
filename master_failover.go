package psync

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file holds what changes a master's history: chained replication (a
// Replica feeding a Master), promotion, and the acknowledgements WAIT and
// min-replicas-to-write rely on.

// dropLinks disconnects every replica link, so they reconnect and learn a
// changed history (Redis's disconnectSlaves).
func (m *Master) dropLinksLocked(cause error) {
	for l := range m.links {
		l.stop(cause)
	}
}

// errHistoryChanged ends sub-replica links when the history they follow
// changes name or is replaced.
var errHistoryChanged = errors.New("psync: replication history changed; reconnect")

// attachFollower makes r the source of this master's stream: the host no
// longer feeds it, pings stop, and sub-replicas are dropped so they
// reconnect (Redis's replicationSetMaster). A new Replica may take over from
// one whose Run has returned (REPLICAOF to another master), keeping the
// history: it continues partially if the new master shares it. It returns the master's position,
// which the replica resumes from when it has none of its own: a demoted
// master then continues partially with its new master when its history
// allows (Redis's cached-master trick).
func (m *Master) attachFollower(r *Replica) (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.follower; f != nil && f != r && f.isRunning() {
		return Position{}, errors.New("psync: Master belongs to another Replica that still runs")
	}
	m.follower = r
	m.dropLinksLocked(errHistoryChanged)
	return Position{ID: m.replid, Offset: m.backlog.Offset()}, nil
}

// resetHistory replaces the history after a full resync of the replica that
// feeds this master: the backlog restarts empty at offset, and sub-replicas
// must resync.
func (m *Master) resetHistory(id ReplID, offset int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replid, m.replid2, m.secondOffset = id, NoReplID, -1
	m.backlog.Reset(offset)
	m.dropLinksLocked(errHistoryChanged)
}

// shiftHistory adopts a new ID for the same history (the upstream master was
// promoted): the old ID stays valid as replid2 up to offset+1.
func (m *Master) shiftHistory(id ReplID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shiftLocked(id)
	m.dropLinksLocked(errHistoryChanged)
}

func (m *Master) shiftLocked(id ReplID) {
	m.replid2, m.secondOffset, m.replid = m.replid, m.backlog.Offset()+1, id
}

// Promote turns a master that a Replica was feeding into an independent
// master, as REPLICAOF NO ONE does: the history gets a fresh ID, the old ID
// is kept as replid2 up to offset+1 so the old master's other replicas
// continue partially with +CONTINUE <newid>, the backlog is kept, and
// sub-replicas are disconnected so they learn the new ID. The Replica's Run
// must have returned first. The host feeds the master from then on.
// Promote on a master no Replica feeds is a no-op that returns its position.
func (m *Master) Promote() (Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.follower
	if f == nil {
		return Position{ID: m.replid, Offset: m.backlog.Offset()}, nil
	}
	if f.isRunning() {
		return Position{}, errors.New("psync: Promote while the Replica feeding this master still runs; stop its Run first")
	}
	m.follower = nil
	m.shiftLocked(NewReplID())
	m.dropLinksLocked(errHistoryChanged)
	m.log.Info("promoted to master", "replid", m.replid, "replid2", m.replid2, "second_offset", m.secondOffset)
	return Position{ID: m.replid, Offset: m.backlog.Offset()}, nil
}

// ErrNoReplicas: fewer replicas than MinReplicasToWrite acknowledged
// recently; the host refuses the write (Redis's -NOREPLICAS).
var ErrNoReplicas = errors.New("psync: not enough good replicas to write")

// GoodReplicas counts the online replicas whose last ACK is at most maxLag
// old (Redis's min-replicas-max-lag test).
func (m *Master) GoodReplicas(maxLag time.Duration) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UnixNano()
	n := 0
	for l := range m.links {
		if l.state.Load() == stateOnline && now-l.ackTime.Load() <= int64(maxLag) {
			n++
		}
	}
	return n
}

// CheckWrite returns an error wrapping ErrNoReplicas when MinReplicasToWrite
// is set and fewer replicas acknowledged within MinReplicasMaxLag, so the
// host refuses the write (-NOREPLICAS Not enough good replicas to write.).
func (m *Master) CheckWrite() error {
	n := m.cfg.MinReplicasToWrite
	if n <= 0 {
		return nil
	}
	if good := m.GoodReplicas(m.cfg.MinReplicasMaxLag); good < n {
		return fmt.Errorf("%w: %d of %d", ErrNoReplicas, good, n)
	}
	return nil
}

// AckedReplicas counts the replicas that acknowledged at least offset.
func (m *Master) AckedReplicas(offset int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for l := range m.links {
		if l.state.Load() == stateOnline && l.ack.Load() >= offset {
			n++
		}
	}
	return n
}

// WaitAcks implements WAIT: it asks every replica for an ACK (REPLCONF
// GETACK *) and blocks until n replicas acknowledged at least offset or ctx
// ends, and returns how many had then. It returns no error on timeout: the
// count is the answer, as WAIT's reply is.
func (m *Master) WaitAcks(ctx context.Context, n int, offset int64) int {
	if got := m.AckedReplicas(offset); got >= n {
		return got
	}
	m.RequestAck()
	_ = m.ackWake.wait(ctx, func() bool { return m.AckedReplicas(offset) >= n })
	return m.AckedReplicas(offset)
}
