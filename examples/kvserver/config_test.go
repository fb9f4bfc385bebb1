package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/psyncio/psync"
)

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"100000": 100000, "1mb": 1 << 20, "1MB": 1 << 20, "512kb": 512 << 10, "1gb": 1 << 30,
		"1m": 1000000, "2k": 2000, "3g": 3000000000, "10b": 10, "0": 0,
	} {
		got, err := parseMemory(in)
		if err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "mb", "1tb", "-1", "1.5mb", "abc"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q) accepted", bad)
		}
	}
}

func TestParseArgs(t *testing.T) {
	cfg, err := parseArgs(nil)
	if err != nil || cfg.Port != 6379 || cfg.Bind != "127.0.0.1" || cfg.BacklogSize != 1<<20 || cfg.ReplTimeout != time.Minute ||
		cfg.ReplicaBufferHard != 256<<20 || cfg.ReplicaBufferSoft != 64<<20 || cfg.ReplicaBufferSoftTime != time.Minute ||
		cfg.DisklessSyncDelay != 0 || cfg.MinReplicasMaxLag != 10*time.Second || cfg.Databases != 16 || cfg.ReplicaOfHost != "" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parseArgs([]string{
		"--port", "7001", "--bind", "0.0.0.0", "--replicaof", "10.0.0.1 7000", "--requirepass", "pw",
		"--masterauth", "mpw", "--masteruser", "repl", "--repl-backlog-size", "512kb", "--repl-timeout", "5",
		"--repl-diskless-sync-delay", "2", "--min-replicas-to-write", "1", "--min-replicas-max-lag", "3",
		"--loglevel", "warning", "--save", "", "--appendonly", "no", "--dir", "/tmp",
		"--cpuprofile", "/tmp/kv.prof", "--client-output-buffer-limit", "normal 0 0 0", "slave 512mb 0 30",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Port: 7001, Bind: "0.0.0.0", ReplicaOfHost: "10.0.0.1", ReplicaOfPort: 7000, RequirePass: "pw",
		MasterAuth: "mpw", MasterUser: "repl", BacklogSize: 512 << 10, ReplTimeout: 5 * time.Second,
		DisklessSyncDelay: 2 * time.Second, PingPeriod: 10 * time.Second, MinReplicasToWrite: 1,
		MinReplicasMaxLag: 3 * time.Second, Databases: 16, LogLevel: slog.LevelWarn, LogName: "warning",
		CPUProfile: "/tmp/kv.prof", ReplicaBufferHard: 512 << 20, ReplicaBufferSoft: 0, ReplicaBufferSoftTime: 30 * time.Second,
	}
	if cfg != want {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
	// replicaof as two words, and --name=value.
	cfg, err = parseArgs([]string{"--replicaof", "localhost", "6380", "--port=7002", "--repl-backlog-size=100000"})
	if err != nil || cfg.ReplicaOfHost != "localhost" || cfg.ReplicaOfPort != 6380 || cfg.Port != 7002 || cfg.BacklogSize != 100000 {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range [][]string{
		{"--port"}, {"--port", "x"}, {"--port", "70000"}, {"--replicaof", "host"}, {"--replicaof", "host", "0"},
		{"--no-such-option", "1"}, {"positional"}, {"--loglevel", "loud"}, {"--repl-backlog-size", "1tb"},
		{"--cpuprofile"}, {"--client-output-buffer-limit", "replica 1mb 1mb"}, {"--client-output-buffer-limit", "other 1 1 1"},
		{"--client-output-buffer-limit", "replica 1mb x 60"}, {"--client-output-buffer-limit", "replica 1mb 1mb -1"},
	} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}

func TestConfigGetGlob(t *testing.T) {
	cfg := defaultConfig()
	if got := cfg.configGet("save"); strings.Join(got, ",") != "save," {
		t.Errorf("save: %q", got)
	}
	if got := cfg.configGet("repl-backlog-*"); strings.Join(got, ",") != "repl-backlog-size,1048576" {
		t.Errorf("repl-backlog-*: %q", got)
	}
	if got := cfg.configGet("*"); len(got) < 30 {
		t.Errorf("*: %d values", len(got))
	}
	for p, s := range map[string]string{"a*c": "abbc", "a?c": "abc", "[ab]x": "bx", "*": ""} {
		if !globMatch(p, s) {
			t.Errorf("%q !~ %q", p, s)
		}
	}
	for p, s := range map[string]string{"a*c": "abbd", "a?c": "ac", "[ab]x": "cx"} {
		if globMatch(p, s) {
			t.Errorf("%q ~ %q", p, s)
		}
	}
}

func TestFormatInfoMaster(t *testing.T) {
	id := psync.ReplID(strings.Repeat("ab", 20))
	d := &infoData{
		RunID: strings.Repeat("0", 40), Port: 7000, PID: 42, Uptime: 90 * time.Second, Clients: 3,
		Master: psync.MasterStats{
			ReplID: id, ReplID2: psync.NoReplID, SecondOffset: -1, Offset: 1000, BacklogSize: 1 << 20,
			BacklogFirst: 1, BacklogLen: 1000, FullSyncs: 2, PartialOK: 5, PartialErr: 1,
			Replicas: []psync.ReplicaLinkStats{
				{Addr: "127.0.0.1:51234", ListeningPort: 7001, State: "online", AckOffset: 990, AckAge: 1500 * time.Millisecond},
				{Addr: "[::1]:5000", ListeningPort: 7002, State: "wait_bgsave", AckOffset: -1},
			},
		},
		Conns: 10, Commands: 99, Keyspace: []dbInfo{{0, 5, 1}, {3, 2, 0}},
	}
	out := formatInfo(nil, d)
	for _, want := range []string{
		"# Server\r\nredis_version:7.0.15\r\n", "tcp_port:7000\r\n", "uptime_in_seconds:90\r\n",
		"\r\n\r\n# Clients\r\nconnected_clients:3\r\n",
		"# Replication\r\nrole:master\r\nconnected_slaves:2\r\n" +
			"slave0:ip=127.0.0.1,port=7001,state=online,offset=990,lag=1\r\n" +
			"slave1:ip=::1,port=7002,state=wait_bgsave,offset=0,lag=0\r\n" +
			"master_failover_state:no-failover\r\n" +
			"master_replid:" + string(id) + "\r\n" +
			"master_replid2:0000000000000000000000000000000000000000\r\n" +
			"master_repl_offset:1000\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\n" +
			"repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:1000\r\n",
		"sync_full:2\r\nsync_partial_ok:5\r\nsync_partial_err:1\r\n",
		"# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\ndb3:keys=2,expires=0,avg_ttl=0\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("INFO lacks %q\n%s", want, out)
		}
	}
	if !strings.Contains(out, "# Memory\r\nused_memory:0\r\nused_memory_human:0B\r\n") || !strings.Contains(out, "# Persistence\r\nloading:0\r\n") {
		t.Errorf("INFO memory/persistence:\n%s", out)
	}
	if humanBytes(1536*1024) != "1.50M" || humanBytes(2048) != "2.00K" {
		t.Error("humanBytes")
	}
	// One section, any case; unknown sections are empty.
	if got := formatInfo([]string{"keyspace"}, d); !strings.HasPrefix(got, "# Keyspace\r\n") || strings.Contains(got, "# Server") {
		t.Errorf("INFO keyspace:\n%s", got)
	}
	if got := formatInfo([]string{"nosuch"}, d); got != "" {
		t.Errorf("INFO nosuch: %q", got)
	}
}

func TestFormatInfoReplica(t *testing.T) {
	d := &infoData{
		Master: psync.MasterStats{ReplID: psync.ReplID(strings.Repeat("cd", 20)), ReplID2: psync.NoReplID, SecondOffset: -1, Offset: 500, BacklogSize: 1 << 20, BacklogFirst: 1, BacklogLen: 500},
		Replica: &psync.ReplicaStats{State: "connected", LinkUp: true, Offset: 480, ReadOffset: 500,
			LastIO: 2500 * time.Millisecond, Connects: 1},
		MHost: "10.0.0.1", MPort: 6379,
	}
	out := formatInfo([]string{"replication"}, d)
	want := "# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\n" +
		"master_last_io_seconds_ago:2\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:500\r\nslave_repl_offset:480\r\n" +
		"slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\n" +
		"master_failover_state:no-failover\r\nmaster_replid:" + strings.Repeat("cd", 20) + "\r\n" +
		"master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:480\r\nsecond_repl_offset:-1\r\n" +
		"repl_backlog_active:1\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:500\r\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	d.Replica.LinkUp, d.Replica.State, d.Replica.SyncInProgress = false, "transfer", true
	out = formatInfo([]string{"replication"}, d)
	if !strings.Contains(out, "master_link_status:down\r\n") || !strings.Contains(out, "master_sync_in_progress:1\r\n") ||
		!strings.Contains(out, "master_link_down_since_seconds:") {
		t.Errorf("link down:\n%s", out)
	}
}
