// Package psync gives a Go key-value store or server Redis-style
// master/replica replication, wire-compatible with Redis 7's PSYNC protocol.
//
// A Master is fed every write of the host, RESP-encoded, in commit order
// (Feed). It keeps the most recent stream bytes in a Backlog and serves any
// number of replicas over any io.ReadWriter (Serve, or ServeSync when the
// host's own RESP server read the handshake): a partial resync from the
// backlog when a replica's offset is still there, a full resync with a
// snapshot of the host's dataset otherwise, then the stream.
//
// A Replica follows a master over connections its Dial function opens: it
// loads snapshots through the host's Loader (swapped in only when complete),
// applies the stream through the host's Applier, acknowledges its offset,
// and reconnects, continuing partially whenever it can. Its Position (ID and
// offset) can be persisted with the dataset so a restart continues too.
//
// A Replica given its own Master (ReplicaConfig.Master) serves sub-replicas
// byte for byte and can be promoted in place (Master.Promote), keeping its
// backlog so the other replicas continue with +CONTINUE <newid>, as PSYNC2
// does.
//
// The host implements three small interfaces, whose doc comments state the
// concurrency contract: Snapshotter (master side), Loader and Applier
// (replica side). Package psynctest has an in-memory implementation and
// in-process links for tests.
package psync
