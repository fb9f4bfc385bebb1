package psync_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/psyncio/psync"
	"github.com/psyncio/psync/psynctest"
)

// A master serves a replica over an in-memory pipe; psynctest.Store stands in
// for the host's dataset.
func ExampleMaster() {
	store := psynctest.NewStore()
	m, err := psync.NewMaster(psync.MasterConfig{Snapshotter: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	store.SetMaster(m) // the store feeds every write to m under its own lock

	// Each write is applied and fed, RESP-encoded, under the store's lock:
	// inside, Exec does apply(args) then m.Feed(psync.AppendCommand(buf, args...)).
	_ = store.Set("greeting", "hello")
	_ = store.Exec("SET", "k", "v")
	fmt.Println("master offset:", m.Offset())

	// Serve replicas: m.Serve(ctx, conn) for each accepted net.Conn. Here an
	// in-process dialer runs Serve on the other end of a pipe.
	dialer := psynctest.NewDialer(m)
	defer dialer.Close()
	replicaStore := psynctest.NewStore()
	r, _ := psync.NewReplica(psync.ReplicaConfig{
		Dial: dialer.Dial, Loader: replicaStore, Applier: replicaStore,
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go r.Run(ctx)
	_ = r.WaitOffset(ctx, m.Offset())

	st := m.Stats()
	fmt.Println("full resyncs:", st.FullSyncs)
	fmt.Println("replica has greeting:", replicaStore.Digest() == store.Digest())
	// Output:
	// master offset: 65
	// full resyncs: 1
	// replica has greeting: true
}

// A replica follows a master, reconnecting and continuing partially after
// its link is cut.
func ExampleReplica() {
	store := psynctest.NewStore()
	m, _ := psync.NewMaster(psync.MasterConfig{Snapshotter: store, Logger: slog.New(slog.DiscardHandler)})
	defer m.Close()
	store.SetMaster(m)
	dialer := psynctest.NewDialer(m)
	defer dialer.Close()

	local := psynctest.NewStore()
	r, err := psync.NewReplica(psync.ReplicaConfig{
		Dial:    dialer.Dial, // any func returning an io.ReadWriteCloser: net.Dial, tls.Dial ...
		Loader:  local,       // builds a new dataset from a snapshot, swapped in on success
		Applier: local,       // applies each command of the stream
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go r.Run(ctx)

	_ = store.Set("a", "1")
	_ = r.WaitOffset(ctx, m.Offset())
	dialer.Last().Cut() // the link fails ...
	_ = store.Set("b", "2")
	_ = r.WaitOffset(ctx, m.Offset()) // ... and the replica continues

	st := r.Stats()
	fmt.Println("offset:", st.Offset == m.Offset())
	fmt.Println("full resyncs:", st.FullSyncs, "partial resyncs:", st.PartialSyncs)
	v, _ := local.Get("b")
	fmt.Println("b =", v)
	// Output:
	// offset: true
	// full resyncs: 1 partial resyncs: 1
	// b = 2
}

// A cursor that falls behind a small backlog keeps its unread bytes, up to
// the retention limit; Master uses this for replicas that lag (MaxLag).
func ExampleBacklog_NewCursor() {
	b := psync.NewBacklog(16, 0) // a 16-byte ring
	b.SetRetention(1 << 10)      // and up to 1 KiB kept for lagging cursors
	c, err := b.NewCursor(1)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	b.Write([]byte("*1\r\n$4\r\nPING\r\n")) // 14 bytes
	b.Write([]byte("*1\r\n$4\r\nPING\r\n")) // the ring now holds only the last 16
	fmt.Println("retained:", b.Retained(), "first:", b.First())

	p := make([]byte, 64)
	var got []byte
	for c.Next() <= b.Offset() {
		n, err := c.Read(p)
		if err != nil {
			panic(err)
		}
		got = append(got, p[:n]...)
	}
	fmt.Printf("%q\n", got)
	b.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	fmt.Println("retained once read:", b.Retained())
	// Output:
	// retained: 12 first: 1
	// "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
	// retained once read: 0
}
