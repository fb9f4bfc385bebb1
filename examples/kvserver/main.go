// Command kvserver is a small Redis-compatible server built on psync: an
// in-memory store of strings, lists, sets, sorted sets and hashes in sixteen
// databases, speaking RESP to clients (redis-cli, redis-benchmark, any
// Redis client) and replicating with Redis 7's PSYNC protocol. A real
// redis-server can follow it as a replica, and it can follow a real
// redis-server.
//
// Flags are named like redis-server's:
//
//	kvserver --port 7000
//	kvserver --port 7001 --replicaof "127.0.0.1 7000"
//	redis-server --port 7002 --replicaof "127.0.0.1 7000"
//
// Supported: --port, --bind, --replicaof (or --slaveof), --requirepass,
// --masterauth, --masteruser, --repl-backlog-size,
// --client-output-buffer-limit (its replica class), --repl-timeout,
// --repl-diskless-sync-delay, --repl-ping-replica-period,
// --min-replicas-to-write, --min-replicas-max-lag, --databases and
// --loglevel, and kvserver's own --cpuprofile FILE (a Go CPU profile of the
// run, written at shutdown). Persistence options (--save, --appendonly, --dir ...) are
// accepted and ignored: kvserver keeps nothing on disk. Go's GC runs at its
// default (GOGC=100, or what the environment sets).
//
// Server commands: AUTH, QUIT, SHUTDOWN, COMMAND (minimal), CONFIG GET/SET,
// CLIENT ID/SETNAME/GETNAME/LIST/KILL, INFO, REPLICAOF/SLAVEOF, ROLE, WAIT,
// and the replication endpoint REPLCONF/PSYNC/SYNC. Data commands go to the kv
// engine (see internal/kv).
//
// Replication: one psync.Master lives as long as the process and holds the
// history (replid, offset, backlog). As master, clients' writes feed it; as
// replica, a psync.Replica attached to it feeds it the upstream's bytes, so
// replicas can chain below a kvserver replica and REPLICAOF NO ONE promotes
// in place (PSYNC2: the old master's other replicas continue partially).
// Snapshots are RDB files written and read through the rdb package's psync
// adapter, so real Redis replicas and masters interoperate.
//
// Differences from Redis 7.0 worth knowing:
//   - only the kv engine's commands exist; a command of a master's stream
//     the engine lacks is logged and skipped, so that key may diverge;
//     streams and module values in a master's snapshot are skipped too;
//   - server commands (INFO, CONFIG, WAIT ...) inside MULTI run at once
//     instead of being queued, and a write refused with NOREPLICAS inside
//     MULTI does not abort the transaction;
//   - no persistence, pub/sub, scripting, ACL users other than "default", or
//     RESP3; COMMAND answers with an empty table;
//   - INFO has the sections server, clients, memory and persistence
//     (minimal), stats, replication and keyspace;
//   - started with --replicaof, kvserver asks PSYNC with its own fresh
//     history rather than PSYNC ? -1, so the master counts one
//     sync_partial_err before the full resync.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	cfg, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvserver:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := run(cfg, log); err != nil {
		log.Error("kvserver stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.addr())
	if err != nil {
		return err
	}
	s, err := newServer(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			s.Close()
			ln.Close()
			return err
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		log.Info("shutting down")
		s.Close()
	}()
	err = s.Serve(ln)
	s.Close()
	return err
}

// startCPUProfile starts a CPU profile into path; the returned func ends it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
