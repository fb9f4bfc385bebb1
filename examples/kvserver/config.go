package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// config is the server's configuration, named after redis-server's
// directives.
type config struct {
	Port int    // port (default 6379)
	Bind string // bind (default 127.0.0.1)

	// ReplicaOfHost and ReplicaOfPort are replicaof; empty host means
	// master.
	ReplicaOfHost string
	ReplicaOfPort int

	RequirePass string // requirepass
	MasterAuth  string // masterauth
	MasterUser  string // masteruser

	BacklogSize       int64         // repl-backlog-size (default 1mb)
	ReplTimeout       time.Duration // repl-timeout (default 60 s)
	DisklessSyncDelay time.Duration // repl-diskless-sync-delay (default 0 here)
	PingPeriod        time.Duration // repl-ping-replica-period (default 10 s)

	// ReplicaBufferHard, ReplicaBufferSoft and ReplicaBufferSoftTime are
	// client-output-buffer-limit's replica class (default 256mb 64mb 60):
	// psync's MasterConfig.MaxLag, SoftMaxLag and SoftMaxLagTime. 0 means no
	// limit, as in Redis.
	ReplicaBufferHard     int64
	ReplicaBufferSoft     int64
	ReplicaBufferSoftTime time.Duration

	MinReplicasToWrite int           // min-replicas-to-write (default 0: off)
	MinReplicasMaxLag  time.Duration // min-replicas-max-lag (default 10 s)

	Databases int        // databases (default 16)
	LogLevel  slog.Level // loglevel: debug, verbose, notice (default), warning
	LogName   string     // the loglevel word, for CONFIG GET

	// CPUProfile is kvserver's own option cpuprofile: a file that receives
	// a Go CPU profile of the whole run, written at shutdown (SHUTDOWN,
	// SIGINT or SIGTERM). Default: none.
	CPUProfile string
}

func defaultConfig() config {
	return config{
		Port:                  6379,
		Bind:                  "127.0.0.1",
		BacklogSize:           1 << 20,
		ReplicaBufferHard:     256 << 20,
		ReplicaBufferSoft:     64 << 20,
		ReplicaBufferSoftTime: 60 * time.Second,
		ReplTimeout:           60 * time.Second,
		PingPeriod:            10 * time.Second,
		MinReplicasMaxLag:     10 * time.Second,
		Databases:             16,
		LogLevel:              slog.LevelInfo,
		LogName:               "notice",
	}
}

// ignoredOptions are redis-server options accepted for command-line
// compatibility (so the same flags start Redis or kvserver) and ignored:
// kvserver never persists anything.
var ignoredOptions = map[string]bool{
	"save": true, "appendonly": true, "dir": true, "dbfilename": true, "daemonize": true,
	"protected-mode": true, "repl-diskless-sync": true, "repl-diskless-load": true,
	"logfile": true, "maxmemory": true, "io-threads": true, "replica-read-only": true,
	"slave-read-only": true,
}

// parseArgs parses redis-server style arguments: "--name value ...", each
// option taking every following word up to the next "--name", or
// "--name=value". replicaof takes "host port" as one word or two.
func parseArgs(args []string) (config, error) {
	cfg := defaultConfig()
	for i := 0; i < len(args); {
		a := args[i]
		if !strings.HasPrefix(a, "--") || len(a) == 2 {
			return cfg, fmt.Errorf("unexpected argument %q (options are --name value)", a)
		}
		name := strings.ToLower(a[2:])
		var vals []string
		if k, v, ok := strings.Cut(a[2:], "="); ok {
			name, vals = strings.ToLower(k), []string{v}
			i++
		} else {
			i++
			for i < len(args) && !(strings.HasPrefix(args[i], "--") && len(args[i]) > 2) {
				vals = append(vals, args[i])
				i++
			}
		}
		if err := cfg.set(name, vals); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// set applies one option; CONFIG SET uses it too.
func (c *config) set(name string, vals []string) error {
	one := func() (string, error) {
		if len(vals) != 1 {
			return "", fmt.Errorf("--%s takes one argument, got %d", name, len(vals))
		}
		return vals[0], nil
	}
	num := func(min int64) (int64, error) {
		v, err := one()
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return 0, fmt.Errorf("--%s: bad number %q", name, v)
		}
		return n, nil
	}
	switch name {
	case "port":
		n, err := num(0)
		if err != nil || n > 65535 {
			return errors.Join(err, fmt.Errorf("--port: out of range"))
		}
		c.Port = int(n)
	case "bind":
		if len(vals) == 0 {
			return fmt.Errorf("--bind takes an address")
		}
		c.Bind = vals[0] // kvserver listens on the first address only
	case "replicaof", "slaveof":
		f := strings.Fields(strings.Join(vals, " "))
		if len(f) == 2 && strings.EqualFold(f[0], "no") && strings.EqualFold(f[1], "one") {
			c.ReplicaOfHost, c.ReplicaOfPort = "", 0
			return nil
		}
		if len(f) != 2 {
			return fmt.Errorf("--%s takes \"host port\"", name)
		}
		p, err := strconv.Atoi(f[1])
		if err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("--%s: bad port %q", name, f[1])
		}
		c.ReplicaOfHost, c.ReplicaOfPort = f[0], p
	case "requirepass":
		v, err := one()
		if err != nil {
			return err
		}
		c.RequirePass = v
	case "masterauth":
		v, err := one()
		if err != nil {
			return err
		}
		c.MasterAuth = v
	case "masteruser":
		v, err := one()
		if err != nil {
			return err
		}
		c.MasterUser = v
	case "repl-backlog-size":
		v, err := one()
		if err != nil {
			return err
		}
		n, err := parseMemory(v)
		if err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		if n < 16<<10 {
			n = 16 << 10 // Redis's minimum backlog
		}
		c.BacklogSize = n
	case "client-output-buffer-limit":
		// "<class> <hard> <soft> <soft seconds>" repeated, in one word or
		// several; only the replica class matters here.
		var f []string
		for _, v := range vals {
			f = append(f, strings.Fields(v)...)
		}
		if len(f) == 0 || len(f)%4 != 0 {
			return fmt.Errorf("--%s: want <class> <hard limit> <soft limit> <soft seconds>, repeated", name)
		}
		for i := 0; i < len(f); i += 4 {
			class := strings.ToLower(f[i])
			hard, err1 := parseMemory(f[i+1])
			soft, err2 := parseMemory(f[i+2])
			secs, err3 := strconv.ParseInt(f[i+3], 10, 64)
			if err := errors.Join(err1, err2, err3); err != nil || secs < 0 || secs > 1<<31 {
				return fmt.Errorf("--%s: bad limits %q", name, strings.Join(f[i:i+4], " "))
			}
			switch class {
			case "replica", "slave":
				c.ReplicaBufferHard, c.ReplicaBufferSoft = hard, soft
				c.ReplicaBufferSoftTime = time.Duration(secs) * time.Second
			case "normal", "pubsub":
				// Accepted; kvserver does not limit clients' output.
			default:
				return fmt.Errorf("--%s: unknown class %q", name, f[i])
			}
		}
	case "repl-timeout":
		n, err := num(1)
		if err != nil {
			return err
		}
		c.ReplTimeout = time.Duration(n) * time.Second
	case "repl-diskless-sync-delay":
		n, err := num(0)
		if err != nil {
			return err
		}
		c.DisklessSyncDelay = time.Duration(n) * time.Second
	case "repl-ping-replica-period", "repl-ping-slave-period":
		n, err := num(1)
		if err != nil {
			return err
		}
		c.PingPeriod = time.Duration(n) * time.Second
	case "min-replicas-to-write", "min-slaves-to-write":
		n, err := num(0)
		if err != nil {
			return err
		}
		c.MinReplicasToWrite = int(n)
	case "min-replicas-max-lag", "min-slaves-max-lag":
		n, err := num(0)
		if err != nil {
			return err
		}
		c.MinReplicasMaxLag = time.Duration(n) * time.Second
	case "databases":
		n, err := num(1)
		if err != nil {
			return err
		}
		c.Databases = int(n)
	case "loglevel":
		v, err := one()
		if err != nil {
			return err
		}
		lv, ok := logLevels[strings.ToLower(v)]
		if !ok {
			return fmt.Errorf("--loglevel: %q is not debug, verbose, notice or warning", v)
		}
		c.LogLevel, c.LogName = lv, strings.ToLower(v)
	case "cpuprofile":
		v, err := one()
		if err != nil {
			return err
		}
		c.CPUProfile = v
	default:
		if !ignoredOptions[name] {
			return fmt.Errorf("unknown option --%s", name)
		}
	}
	return nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "verbose": slog.LevelDebug, "notice": slog.LevelInfo,
	"warning": slog.LevelWarn, "nothing": slog.LevelError + 4,
}

// parseMemory parses a size as Redis's memtoll does: a number with an
// optional unit, k/m/g for powers of 1000 and kb/mb/gb for powers of 1024,
// any case.
func parseMemory(s string) (int64, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}} {
		if strings.HasSuffix(l, u.suffix) {
			l, mul = strings.TrimSuffix(l, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(l, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mul, nil
}

// addr is the listening address.
func (c *config) addr() string { return net.JoinHostPort(c.Bind, strconv.Itoa(c.Port)) }

// configGet returns CONFIG GET's pairs for the parameters matching pattern
// (a glob), in a stable order.
func (c *config) configGet(pattern string) []string {
	yesno := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	replicaof := ""
	if c.ReplicaOfHost != "" {
		replicaof = c.ReplicaOfHost + " " + strconv.Itoa(c.ReplicaOfPort)
	}
	params := [][2]string{
		{"port", strconv.Itoa(c.Port)},
		{"bind", c.Bind},
		{"databases", strconv.Itoa(c.Databases)},
		{"save", ""},
		{"appendonly", yesno(false)},
		{"replicaof", replicaof},
		{"slaveof", replicaof},
		{"requirepass", c.RequirePass},
		{"masterauth", c.MasterAuth},
		{"masteruser", c.MasterUser},
		{"repl-backlog-size", strconv.FormatInt(c.BacklogSize, 10)},
		{"client-output-buffer-limit", fmt.Sprintf("normal 0 0 0 slave %d %d %d pubsub 33554432 8388608 60",
			c.ReplicaBufferHard, c.ReplicaBufferSoft, int(c.ReplicaBufferSoftTime/time.Second))},
		{"repl-timeout", strconv.Itoa(int(c.ReplTimeout / time.Second))},
		{"repl-diskless-sync", "yes"},
		{"repl-diskless-sync-delay", strconv.Itoa(int(c.DisklessSyncDelay / time.Second))},
		{"repl-ping-replica-period", strconv.Itoa(int(c.PingPeriod / time.Second))},
		{"min-replicas-to-write", strconv.Itoa(c.MinReplicasToWrite)},
		{"min-replicas-max-lag", strconv.Itoa(int(c.MinReplicasMaxLag / time.Second))},
		{"replica-read-only", "yes"},
		{"loglevel", c.LogName},
		{"maxmemory", "0"},
	}
	var out []string
	for _, p := range params {
		if globMatch(strings.ToLower(pattern), p[0]) {
			out = append(out, p[0], p[1])
		}
	}
	return out
}

// globMatch matches s against a glob pattern with * ? and [...] classes,
// enough for CONFIG GET.
func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 || s == "" {
				return false
			}
			if !strings.Contains(p[1:end], s[:1]) {
				return false
			}
			p, s = p[end+1:], s[1:]
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}
