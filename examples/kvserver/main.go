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
// --masterauth, --masteruser, --repl-backlog-size, --repl-timeout,
// --repl-diskless-sync-delay, --repl-ping-replica-period,
// --min-replicas-to-write, --min-replicas-max-lag, --databases and
// --loglevel. Persistence options (--save, --appendonly, --dir ...) are
// accepted and ignored: kvserver keeps nothing on disk.
//
// Server commands: AUTH, QUIT, SHUTDOWN, COMMAND (minimal), CONFIG GET/SET,
// CLIENT ID/SETNAME/GETNAME/LIST/KILL, INFO, REPLICAOF/SLAVEOF, ROLE, WAIT,
// and the replication endpoint REPLCONF/PSYNC/SYNC. Data commands go to the kv
// engine (see internal/kv).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
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
