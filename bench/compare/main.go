// Command compare measures psync and the kvserver example against real
// Redis, side by side in one run, and writes BENCHMARKS.md:
//
//  1. full resync of 1,000,000 keys of 100 random bytes, kvserver ->
//     kvserver against redis-server -> redis-server;
//  2. streaming: redis-benchmark SETs against a master with one replica
//     (ops/s and the replica's catch-up after the benchmark);
//  3. partial resync after CLIENT KILL TYPE master under a write load, and
//     in-process over net.Pipe and TCP;
//  4. the machine's limits (loopback TCP, copy) and psync's library stream
//     and snapshot transfer as fractions of loopback TCP;
//  5. RDB decode throughput of the rdb package against redis-check-rdb.
//
// Run it from the module root with redis-server, redis-benchmark,
// redis-cli and redis-check-rdb (7.0) installed:
//
//	go run ./bench/compare            # full sizes, a few minutes
//	go run ./bench/compare -quick     # small sizes, to check it works
//
// It is a main package without tests: go test ./... never runs it.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

type options struct {
	keys     int    // keys of the full resync, and of the RDB file's DEBUG POPULATE
	requests int    // redis-benchmark -n
	runs     int    // repetitions of each comparison
	streams  int    // repetitions of the streaming comparison
	kills    int    // CLIENT KILL per pair
	only     string // comma-separated sections to run
	out      string // markdown file to write
	kvserver string // prebuilt kvserver binary
	kvflags  string // extra kvserver flags
	backlog  string // kvserver --repl-backlog-size of the second streaming comparison
	quick    bool
	cpuprof  string // CPU profile of this process (the in-process comparisons)
}

func main() {
	var o options
	flag.IntVar(&o.keys, "keys", 1_000_000, "keys loaded for the full resync and written by DEBUG POPULATE for the RDB decode")
	flag.IntVar(&o.requests, "n", 1_000_000, "redis-benchmark requests (-n) of the streaming comparison")
	flag.IntVar(&o.runs, "runs", 3, "repetitions of each comparison; the table shows medians")
	flag.IntVar(&o.streams, "stream-runs", 7, "repetitions of the streaming comparison, whose catch-up varies most from run to run")
	flag.IntVar(&o.kills, "kills", 15, "link kills per pair in the partial resync comparison")
	flag.StringVar(&o.only, "only", "", "comma-separated sections to run: raw,rdb,partial,stream,full (default all)")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "markdown report to write (empty: none)")
	flag.StringVar(&o.kvserver, "kvserver", "", "use this kvserver binary instead of building ./examples/kvserver")
	flag.StringVar(&o.kvflags, "kvflags", "", "extra kvserver flags, space-separated")
	flag.StringVar(&o.backlog, "stream-backlog", "", "also run the streaming comparison with kvserver --repl-backlog-size this (for example 256mb); empty: skip")
	flag.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of this process (in-process comparisons: raw, rdb) to this file")
	flag.BoolVar(&o.quick, "quick", false, "small sizes (100k keys, 200k requests, one run): checks the program, not a result")
	flag.Parse()
	if o.quick {
		o.keys, o.requests, o.runs, o.streams, o.kills = 100_000, 200_000, 1, 1, 3
	}
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func run(o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, bin := range []string{"redis-server", "redis-benchmark", "redis-cli", "redis-check-rdb"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is needed: %w", bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "psync-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, nextPort: 17000, kvserver: o.kvserver}
	if o.kvflags != "" {
		e.extraKV = strings.Fields(o.kvflags)
	}
	defer e.stopAll()
	if e.kvserver == "" {
		if e.kvserver, err = buildKVServer(root, dir); err != nil {
			return err
		}
	}
	want := func(section string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), section)
	}
	r := &report{opt: o, machine: describeMachine(), loadBefore: loadAvg()}
	start := time.Now()

	if want("raw") {
		if err := r.raw(o); err != nil {
			return err
		}
	}
	if want("rdb") {
		path, err := e.makeRDB(o.keys)
		if err != nil {
			return fmt.Errorf("making the RDB file: %w", err)
		}
		st, _ := os.Stat(path)
		r.rdbSize = st.Size()
		for i := range o.runs {
			dr, n, err := decodeRDB(path)
			if err != nil {
				return fmt.Errorf("rdb decode: %w", err)
			}
			dc, err := checkRDB(path)
			if err != nil {
				return err
			}
			r.rdbKeys = n
			r.decode = append(r.decode, dr)
			r.check = append(r.check, dc)
			logf("rdb decode %d/%d: rdb %v, redis-check-rdb %v (%d keys, %.1f MB)", i+1, o.runs, dr.Round(time.Millisecond), dc.Round(time.Millisecond), n, float64(r.rdbSize)/1e6)
		}
	}
	if want("partial") {
		res, err := e.partialResync(o.kills, logf)
		if err != nil {
			return err
		}
		r.partial = res
		for _, tr := range []string{"pipe", "tcp"} {
			ds, err := partialInProcess(tr, 200)
			if err != nil {
				return fmt.Errorf("in-process partial resync over %s: %w", tr, err)
			}
			logf("in-process partial resync over %s: median %v, p90 %v", tr, ds[len(ds)/2], ds[len(ds)*9/10])
			if tr == "pipe" {
				r.inprocPipe = ds
			} else {
				r.inprocTCP = ds
			}
		}
	}
	if want("stream") {
		res, err := e.streaming(o.requests, o.streams, nil, logf)
		if err != nil {
			return err
		}
		r.stream = res
		if o.backlog != "" {
			res, err := e.streaming(o.requests, o.streams, []string{"--repl-backlog-size", o.backlog}, logf)
			if err != nil {
				return err
			}
			r.streamBig = res
		}
	}
	if want("full") {
		res, err := e.fullResync(o.keys, o.runs, logf)
		if err != nil {
			return err
		}
		r.full = res
	}
	r.elapsed = time.Since(start)
	r.loadAfter = loadAvg()
	table := r.table()
	fmt.Println(table)
	if o.out != "" {
		path := o.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.WriteFile(path, []byte(r.markdown(table)), 0o644); err != nil {
			return err
		}
		logf("wrote %s", path)
	}
	return nil
}

// raw measures the machine's limits and psync's library paths in-process.
func (r *report) raw(o options) error {
	tcpTotal, streamTotal, snap := int64(2<<30), int64(1<<30), int64(256<<20)
	if o.quick {
		tcpTotal, streamTotal = 512<<20, 256<<20
	}
	for i := range o.runs {
		tcp, err := loopbackTCP(tcpTotal)
		if err != nil {
			return fmt.Errorf("loopback TCP: %w", err)
		}
		cp := copyBandwidth(64<<20, 640<<20)
		cpc := copyBandwidth(1<<20, 640<<20)
		st, err := streamTCP(streamTotal)
		if err != nil {
			return fmt.Errorf("psync stream: %w", err)
		}
		sn, err := snapshotTransfer(snap)
		if err != nil {
			return fmt.Errorf("snapshot transfer: %w", err)
		}
		r.tcp, r.copy, r.copyCache, r.streamLib, r.snap = append(r.tcp, tcp), append(r.copy, cp), append(r.copyCache, cpc), append(r.streamLib, st), append(r.snap, sn)
		logf("raw %d/%d: loopback TCP %.2f GB/s, copy 64 MiB %.1f GB/s, copy 1 MiB %.1f GB/s, psync stream %.2f GB/s, snapshot 256 MiB %.2f GB/s",
			i+1, o.runs, tcp/1e9, cp/1e9, cpc/1e9, st/1e9, sn/1e9)
	}
	return nil
}

func median[T cmp.Ordered](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

type machine struct {
	nproc     int
	cpu       string
	goVersion string
	redis     string
	date      string
	kernel    string
}

func describeMachine() machine {
	m := machine{nproc: runtime.NumCPU(), goVersion: runtime.Version(), date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &m.nproc)
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		m.redis = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.kernel = strings.TrimSpace(string(out))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
