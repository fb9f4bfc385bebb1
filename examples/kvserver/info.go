package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/psyncio/psync"
)

// infoData is everything INFO reports, gathered at one moment, so that
// formatting is a pure function.
type infoData struct {
	RunID    string
	Port     int
	PID      int
	Uptime   time.Duration
	Clients  int
	Master   psync.MasterStats
	Replica  *psync.ReplicaStats // nil in the master role
	MHost    string
	MPort    int
	Memory   uint64 // heap in use, bytes
	Conns    int64
	Commands int64
	Expired  int64
	Keyspace []dbInfo
}

type dbInfo struct {
	DB, Keys, Expires int
}

// info answers INFO [section ...].
func (s *server) info(args [][]byte) []byte {
	d := infoData{
		RunID:    s.runID,
		Port:     s.cfg.Port,
		PID:      os.Getpid(),
		Uptime:   time.Since(s.start),
		Master:   s.m.Stats(),
		Conns:    s.totalConns.Load(),
		Commands: s.totalCmds.Load(),
		Expired:  s.expiredKeys.Load(),
	}
	sections := make([]string, 0, len(args))
	for _, a := range args {
		sections = append(sections, strings.ToLower(string(a)))
	}
	// Only what the sections shown need: INFO is polled often, and the
	// keyspace figures wait for the store lock, which a replica holds for
	// a whole batch of the stream and a master for a client's pipeline.
	want := infoWanted(sections)
	if want["memory"] {
		d.Memory = heapInUse()
	}
	if want["clients"] {
		for _, c := range s.connections() {
			if c.kind.Load() == kindNormal {
				d.Clients++
			}
		}
	}
	s.roleMu.Lock()
	if rl := s.replica; rl != nil {
		st := rl.r.Stats()
		d.Replica, d.MHost, d.MPort = &st, rl.host, rl.port
	}
	s.roleMu.Unlock()
	if want["keyspace"] {
		s.store.KeyspaceStats(func(db, keys, expires int) {
			if keys > 0 {
				d.Keyspace = append(d.Keyspace, dbInfo{DB: db, Keys: keys, Expires: expires})
			}
		})
	}
	return psyncBulk(formatInfo(sections, &d))
}

// heapInUse returns the bytes of live and not yet swept heap objects (what
// runtime.MemStats.HeapAlloc reports) from runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world: INFO is polled often.
func heapInUse() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

func psyncBulk(s string) []byte { return psync.AppendBulkString(nil, s) }

// infoSections are the sections kvserver reports, in Redis's order.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "keyspace"}

// infoWanted returns the sections to show: those named, every one for none,
// "all", "default" or "everything".
func infoWanted(sections []string) map[string]bool {
	want := map[string]bool{}
	for _, s := range sections {
		switch s {
		case "all", "default", "everything":
			for _, n := range infoSections {
				want[n] = true
			}
		default:
			want[s] = true
		}
	}
	if len(sections) == 0 {
		for _, n := range infoSections {
			want[n] = true
		}
	}
	return want
}

// formatInfo renders the requested sections (all when none, "all",
// "default" or "everything") with Redis's field names and CRLF line ends.
func formatInfo(sections []string, d *infoData) string {
	want := infoWanted(sections)
	var b strings.Builder
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteString("\r\n")
	}
	for _, sec := range infoSections {
		if !want[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		switch sec {
		case "server":
			line("# Server")
			line("redis_version:7.0.15")
			line("redis_mode:standalone")
			line("os:%s", runtime.GOOS)
			line("arch_bits:64")
			line("multiplexing_api:go")
			line("go_version:%s", runtime.Version())
			line("process_id:%d", d.PID)
			line("run_id:%s", d.RunID)
			line("tcp_port:%d", d.Port)
			line("uptime_in_seconds:%d", int64(d.Uptime/time.Second))
			line("uptime_in_days:%d", int64(d.Uptime/(24*time.Hour)))
			line("executable:kvserver")
			line("config_file:")
		case "clients":
			line("# Clients")
			line("connected_clients:%d", d.Clients)
			line("maxclients:10000")
			line("blocked_clients:0")
		case "memory":
			line("# Memory")
			line("used_memory:%d", d.Memory)
			line("used_memory_human:%s", humanBytes(d.Memory))
			line("maxmemory:0")
			line("maxmemory_policy:noeviction")
		case "persistence":
			line("# Persistence")
			line("loading:0")
			line("async_loading:0")
			line("rdb_bgsave_in_progress:0")
			line("rdb_last_bgsave_status:ok")
			line("aof_enabled:0")
		case "replication":
			formatReplication(line, d)
		case "stats":
			line("# Stats")
			line("total_connections_received:%d", d.Conns)
			line("total_commands_processed:%d", d.Commands)
			line("rejected_connections:0")
			line("sync_full:%d", d.Master.FullSyncs)
			line("sync_partial_ok:%d", d.Master.PartialOK)
			line("sync_partial_err:%d", d.Master.PartialErr)
			line("expired_keys:%d", d.Expired)
			line("total_net_repl_output_bytes:%d", d.Master.BytesSent)
			if d.Replica != nil {
				line("total_net_repl_input_bytes:%d", d.Replica.BytesReceived)
			} else {
				line("total_net_repl_input_bytes:0")
			}
		case "keyspace":
			line("# Keyspace")
			for _, k := range d.Keyspace {
				line("db%d:keys=%d,expires=%d,avg_ttl=0", k.DB, k.Keys, k.Expires)
			}
		}
	}
	return b.String()
}

func formatReplication(line func(string, ...any), d *infoData) {
	m := d.Master
	line("# Replication")
	offset := m.Offset
	if r := d.Replica; r != nil {
		line("role:slave")
		line("master_host:%s", d.MHost)
		line("master_port:%d", d.MPort)
		status := "down"
		if r.LinkUp {
			status = "up"
		}
		line("master_link_status:%s", status)
		lastIO := int64(-1)
		if r.LastIO > 0 && r.Connects > 0 {
			lastIO = int64(r.LastIO / time.Second)
		}
		line("master_last_io_seconds_ago:%d", lastIO)
		line("master_sync_in_progress:%d", b2i(r.SyncInProgress))
		line("slave_read_repl_offset:%d", r.ReadOffset)
		line("slave_repl_offset:%d", r.Offset)
		if !r.LinkUp {
			line("master_link_down_since_seconds:%d", lastIO)
		}
		line("slave_priority:100")
		line("slave_read_only:1")
		line("replica_announced:1")
		offset = r.Offset
	} else {
		line("role:master")
	}
	online := 0
	for _, rs := range m.Replicas {
		if rs.State == "online" {
			online++
		}
	}
	line("connected_slaves:%d", len(m.Replicas))
	for i, rs := range m.Replicas {
		lag := int64(rs.AckAge / time.Second)
		line("slave%d:ip=%s,port=%d,state=%s,offset=%d,lag=%d", i, hostOf(rs.Addr), rs.ListeningPort, rs.State, max(rs.AckOffset, 0), lag)
	}
	line("master_failover_state:no-failover")
	line("master_replid:%s", m.ReplID)
	replid2 := m.ReplID2
	if replid2 == "" {
		replid2 = psync.NoReplID
	}
	line("master_replid2:%s", replid2)
	line("master_repl_offset:%d", offset)
	line("second_repl_offset:%d", m.SecondOffset)
	line("repl_backlog_active:1")
	line("repl_backlog_size:%d", m.BacklogSize)
	line("repl_backlog_first_byte_offset:%d", m.BacklogFirst)
	line("repl_backlog_histlen:%d", m.BacklogLen)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// humanBytes formats n as Redis's used_memory_human does (1.50M, 12.00K).
func humanBytes(n uint64) string {
	f := float64(n)
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", f/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", f/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", f/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
