// Package kv is the in-memory data engine of the kvserver example: sixteen
// Redis-style databases of strings, lists, sets, sorted sets and hashes,
// with the command semantics, reply bytes and error strings of Redis 7.0.
//
// The engine does no I/O. The host server parses RESP requests, hands each
// command to Store.Exec (or ExecCommand, with its wire bytes) and writes
// back the reply Exec appends. For every write that changes the dataset,
// the store calls the propagate hook with the command as Redis 7.0 sends it
// to replicas (rewritten where Redis rewrites it for determinism, such as
// relative expiry times turned into absolute ones; as the client's own
// bytes when it goes out unchanged), in commit order and while holding the
// store lock, so the host can append it to its replication stream
// atomically with the change. A Batch runs a client's pipeline under one
// hold of the lock, and the propagate flush hook (SetPropagateFlush) lets
// the host feed the batch's writes in one piece before the lock is free.
// On a replica, Store.Apply (or ApplyAtomically, which records the offset
// in the same hold) runs the commands received from the master.
//
// Full resynchronisation uses Snapshot: capturing one is cheap (the
// per-database key tables and expiry maps are copied, values are shared and
// copied on write later), and writing it out as RDB (WriteRDB, or WriteEntries for the rdb
// package's psync adapter) runs alongside new writes. On the replica side,
// LoadRDB, or a Builder under rdb.Loader, builds a separate Dataset from
// an RDB stream, and Swap installs it in one step.
//
// A minimal host loop:
//
//	st := kv.New(kv.Options{})
//	st.SetPropagate(func(db int, argv [][]byte, raw []byte) { pending = encode(pending, db, argv, raw) })
//	st.SetPropagateFlush(func() { master.Feed(pending); pending = pending[:0] })
//	var c kv.Client // one per connection
//	b := st.Batch() // one per connection
//	out = b.Exec(&c, cmd, out[:0]) // cmd from a psync.CommandReader; more while input is buffered
//	b.End() // before the connection reads or writes
//
//	// full resync, master side: capture and offset under one lock hold
//	snap := st.Snapshot(func() { offset = master.Offset() })
//	defer snap.Release()
//	snap.WriteRDB(w, aux)
package kv
