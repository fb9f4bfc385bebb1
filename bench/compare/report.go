package main

import (
	_ "embed"
	"fmt"
	"strings"
	"time"
)

// notes.md holds the analysis (profiles, what was changed, what is left),
// appended to the generated report.
//
//go:embed notes.md
var notes string

type report struct {
	opt        options
	machine    machine
	loadBefore string
	loadAfter  string
	elapsed    time.Duration

	tcp, copy, copyCache, streamLib, snap []float64 // bytes/s

	rdbSize       int64
	rdbKeys       int
	decode, check []time.Duration

	partial               map[kind][]partialRun
	inprocPipe, inprocTCP []time.Duration

	stream    map[kind][]streamRun
	streamBig map[kind][]streamRun // kvserver with -stream-backlog
	full      map[kind][]fullResyncRun
}

// row is one line of the results table.
type row struct {
	what, ours, rival, ratio, target, met string
}

func yes(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**no**"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
func gbps(b float64) string { return fmt.Sprintf("%.2f GB/s", b/1e9) }

func (r *report) rows() []row {
	var rows []row
	if kv, rd := r.full[kindKV], r.full[kindRedis]; len(kv) > 0 && len(rd) > 0 {
		kd, rdd := durations(kv, func(x fullResyncRun) time.Duration { return x.d }), durations(rd, func(x fullResyncRun) time.Duration { return x.d })
		k, d := median(kd), median(rdd)
		ratio := median(perRun(secondsOf(kd), secondsOf(rdd)))
		rows = append(rows, row{
			what: fmt.Sprintf("1. Full resync, %d keys of 100 random B (replica start -> every key)", r.opt.keys),
			ours: secs(k), rival: secs(d), ratio: fmt.Sprintf("%.2fx", ratio), target: "<= 0.5x", met: yes(ratio <= 0.5),
		})
	}
	rows = append(rows, streamRows(r.stream, "")...)
	if r.streamBig != nil {
		rows = append(rows, streamRows(r.streamBig, ", kvserver --repl-backlog-size "+r.opt.backlog)...)
	}
	if kv, rd := r.partial[kindKV], r.partial[kindRedis]; len(kv) > 0 && len(rd) > 0 {
		kd, rdd := durations(kv, func(x partialRun) time.Duration { return x.d }), durations(rd, func(x partialRun) time.Duration { return x.d })
		k, d := median(kd), median(rdd)
		ratio := median(perRun(secondsOf(kd), secondsOf(rdd)))
		rows = append(rows, row{
			what: "3. Partial resync: CLIENT KILL TYPE master under load -> streaming again",
			ours: fmt.Sprintf("%s (%d/%d partial)", millis(k), countPartial(kv), len(kv)), rival: fmt.Sprintf("%s (%d/%d partial)", millis(d), countPartial(rd), len(rd)),
			ratio: fmt.Sprintf("%.2fx", ratio), target: "faster than Redis (< 1.0x)",
			met: yes(ratio < 1 && countPartial(kv) == len(kv)),
		})
	}
	for _, x := range []struct {
		name string
		ds   []time.Duration
	}{{"net.Pipe", r.inprocPipe}, {"TCP loopback", r.inprocTCP}} {
		if len(x.ds) == 0 {
			continue
		}
		m := median(x.ds)
		rows = append(rows, row{
			what: "3. Partial resync in-process over " + x.name + ": cut -> next write applied (median of 200)",
			ours: millis(m), rival: "-", ratio: "-", target: "<= 1 ms", met: yes(m <= time.Millisecond),
		})
	}
	if len(r.tcp) > 0 {
		tcp := median(r.tcp)
		rows = append(rows, row{what: "4. Loopback TCP, 256 KiB writes", ours: gbps(tcp), rival: "-", ratio: "1.00x", target: "(limit)", met: "-"})
		rows = append(rows, row{what: "4. copy(), 64 MiB (memory bandwidth)", ours: gbps(median(r.copy)), rival: "-", ratio: fmt.Sprintf("%.1fx TCP", median(r.copy)/tcp), target: "(limit)", met: "-"})
		rows = append(rows, row{what: "4. copy(), 1 MiB (in cache)", ours: gbps(median(r.copyCache)), rival: "-", ratio: fmt.Sprintf("%.1fx TCP", median(r.copyCache)/tcp), target: "(limit)", met: "-"})
		// Fractions are taken run by run (each against the loopback figure
		// of the same run), then the median.
		st, stf := median(r.streamLib), median(perRun(r.streamLib, r.tcp))
		rows = append(rows, row{
			what: "4. psync stream: Master.Feed of 144 B SETs -> Replica (no-op Applier), TCP",
			ours: gbps(st), rival: "loopback TCP", ratio: fmt.Sprintf("%.0f%% of TCP", 100*stf), target: ">= 1 GB/s and >= 30%",
			met: yes(st >= 1e9 && stf >= 0.3),
		})
		sn, snf := median(r.snap), median(perRun(r.snap, r.tcp))
		rows = append(rows, row{
			what: "4. Snapshot transfer through psync, 256 MiB, TCP",
			ours: gbps(sn), rival: "loopback TCP", ratio: fmt.Sprintf("%.0f%% of TCP", 100*snf), target: ">= 80%", met: yes(snf >= 0.8),
		})
	}
	if len(r.decode) > 0 {
		d, c := median(r.decode), median(r.check)
		sp := median(perRun(secondsOf(r.check), secondsOf(r.decode)))
		mb := float64(r.rdbSize) / 1e6
		rows = append(rows, row{
			what:  fmt.Sprintf("5. RDB decode, %.1f MB file (%d keys), checksum verified", mb, r.rdbKeys),
			ours:  fmt.Sprintf("%.0f MB/s (%s)", mb/d.Seconds(), millis(d)),
			rival: fmt.Sprintf("redis-check-rdb %.0f MB/s (%s)", mb/c.Seconds(), millis(c)),
			ratio: fmt.Sprintf("%.2fx", sp), target: ">= 3x", met: yes(sp >= 3),
		})
	}
	return rows
}

// perRun returns xs[i]/of[i].
func perRun(xs, of []float64) []float64 {
	out := make([]float64, len(xs))
	for i := range xs {
		out[i] = xs[i] / of[i]
	}
	return out
}

func countPartial(rs []partialRun) int {
	n := 0
	for _, r := range rs {
		if r.partial {
			n++
		}
	}
	return n
}

func durations[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func secondsOf(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func floats[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// table renders the results as a markdown table.
func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| comparison | psync / kvserver | rival | ratio | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, x := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", x.what, x.ours, x.rival, x.ratio, x.target, x.met)
	}
	return b.String()
}

// runs renders every individual figure, so the medians can be checked.
func (r *report) runs() string {
	var b strings.Builder
	list := func(name string, xs []string) {
		if len(xs) > 0 {
			fmt.Fprintf(&b, "- %s: %s\n", name, strings.Join(xs, ", "))
		}
	}
	for _, k := range []kind{kindKV, kindRedis} {
		var xs []string
		for _, x := range r.full[k] {
			xs = append(xs, fmt.Sprintf("%s (%.1f MB sent)", secs(x.d), float64(x.bytes)/1e6))
		}
		list("full resync, "+string(k), xs)
	}
	for _, k := range []kind{kindKV, kindRedis} {
		var xs []string
		for _, x := range r.stream[k] {
			s := fmt.Sprintf("%.0f SET/s, catch-up %s", x.ops, millis(x.catchUp))
			if x.resyncs > 0 {
				s += fmt.Sprintf(" (%d full resync: replica dropped)", x.resyncs)
			}
			xs = append(xs, s)
		}
		list("streaming, "+string(k), xs)
	}
	for _, k := range []kind{kindKV, kindRedis} {
		var xs []string
		for _, x := range r.streamBig[k] {
			xs = append(xs, fmt.Sprintf("%.0f SET/s, catch-up %s", x.ops, millis(x.catchUp)))
		}
		list("streaming (kvserver --repl-backlog-size "+r.opt.backlog+"), "+string(k), xs)
	}
	for _, k := range []kind{kindKV, kindRedis} {
		var xs []string
		for _, x := range r.partial[k] {
			s := millis(x.d)
			if !x.partial {
				s += " (full!)"
			}
			xs = append(xs, s)
		}
		list("link kill -> streaming, "+string(k), xs)
	}
	pct := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return ""
		}
		return fmt.Sprintf("min %s, median %s, p90 %s, max %s", millis(ds[0]), millis(ds[len(ds)/2]), millis(ds[len(ds)*9/10]), millis(ds[len(ds)-1]))
	}
	if len(r.inprocPipe) > 0 {
		list("in-process partial resync, net.Pipe", []string{pct(r.inprocPipe)})
		list("in-process partial resync, TCP", []string{pct(r.inprocTCP)})
	}
	g := func(xs []float64) []string {
		var out []string
		for _, x := range xs {
			out = append(out, gbps(x))
		}
		return out
	}
	list("loopback TCP", g(r.tcp))
	list("copy 64 MiB", g(r.copy))
	list("copy 1 MiB", g(r.copyCache))
	list("psync stream", g(r.streamLib))
	list("snapshot transfer", g(r.snap))
	var ds, cs []string
	for i := range r.decode {
		ds = append(ds, millis(r.decode[i]))
		cs = append(cs, millis(r.check[i]))
	}
	list("rdb decode", ds)
	list("redis-check-rdb", cs)
	return b.String()
}

func (r *report) markdown(table string) string {
	m := r.machine
	var b strings.Builder
	b.WriteString("# Benchmarks: psync and kvserver against Redis\n\n")
	b.WriteString("Generated by `go run ./bench/compare` (bench/compare/main.go); the analysis at the end is\n")
	b.WriteString("bench/compare/notes.md. Every comparison runs both sides in the same run, alternating,\n")
	b.WriteString("and the table shows medians: compare ratios, not figures from another run.\n\n")
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- nproc: %d; CPU: %s; %s\n", m.nproc, m.cpu, m.kernel)
	fmt.Fprintf(&b, "- Go: %s; %s\n", m.goVersion, m.redis)
	fmt.Fprintf(&b, "- date: %s; load average before %s, after %s; run took %s\n", m.date, r.loadBefore, r.loadAfter, r.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- flags: -keys %d -n %d -runs %d -stream-runs %d -kills %d", r.opt.keys, r.opt.requests, r.opt.runs, r.opt.streams, r.opt.kills)
	if r.opt.quick {
		b.WriteString(" (-quick: NOT the target sizes)")
	}
	if r.opt.kvflags != "" {
		fmt.Fprintf(&b, " -kvflags %q", r.opt.kvflags)
	}
	b.WriteString("\n\n## Results\n\n")
	b.WriteString(table)
	b.WriteString("\nEvery run:\n\n")
	b.WriteString(r.runs())
	b.WriteString("\n## Commands\n\n")
	b.WriteString(commands(r.opt))
	b.WriteString("\n")
	b.WriteString(notes)
	return b.String()
}

func commands(o options) string {
	return fmt.Sprintf(`- kvserver: `+"`go build ./examples/kvserver`"+`, then
  `+"`kvserver --port M --repl-diskless-sync-delay 0`"+` (master) and
  `+"`kvserver --port R --repl-diskless-sync-delay 0 --replicaof 127.0.0.1 M`"+` (replica).
- Redis: `+"`redis-server --port P --bind 127.0.0.1 --save \"\" --appendonly no --repl-diskless-sync-delay 0 --dir TMP --dbfilename dump-P.rdb --logfile TMP/redis-P.log --daemonize no --enable-debug-command yes`"+`,
  the replica with `+"`--replicaof 127.0.0.1 M`"+` added (other settings default: diskless sync, disk load).
- Full resync: the master is loaded with %[1]d pipelined `+"`SET key:%%012d <100 random bytes>`"+` over one
  TCP connection (the same bytes for both), then the replica process is started; the time runs from
  its start until `+"`DBSIZE`"+` on it returns %[1]d (polled every 2 ms; `+"`-LOADING`"+` counts as not yet).
- Streaming: a fresh master and replica, one `+"`SET warmup 1`"+`, wait for the link; then
  `+"`redis-benchmark %[2]s`"+` on the master; catch-up is the time from the benchmark's exit until
  the replica's `+"`slave_repl_offset`"+` reaches the master's `+"`master_repl_offset`"+` (polled every 0.1 ms);
  the master's `+"`sync_full`"+` before and after counts the times the replica was dropped and fully resynced.
  Both sides run with their defaults: a 1mb backlog, and a replica kept while it lags up to
  `+"`client-output-buffer-limit replica 256mb 64mb 60`"+` (Redis's output buffer; psync's MasterConfig.MaxLag,
  SoftMaxLag and SoftMaxLagTime, whose defaults are the same). With `+"`-stream-backlog SIZE`"+` it runs a second
  time with kvserver `+"`--repl-backlog-size SIZE`"+`.
- Partial resync: a writer sends batches of 100 pipelined SETs with a 0.5 ms pause to the master;
  `+"`CLIENT KILL TYPE master`"+` on the replica; the time runs from sending it until the master's
  `+"`sync_partial_ok`"+` (or `+"`sync_full`"+`) has moved, the replica's `+"`master_link_status`"+` is up and
  its `+"`slave_repl_offset`"+` is past its value before the kill. Partial means sync_full did not move.
- In-process partial resync: psync.Master and psync.Replica (psynctest stores), the replica's
  connection closed, one write, `+"`Replica.WaitOffset`"+` of the master offset (as BenchmarkPartialResync).
- Raw: 2 GiB in 256 KiB writes over loopback TCP; copy() of 64 MiB (DRAM-bound) and of
  1 MiB (in cache) until 640 MiB are copied; 1 GiB of 144 B SETs
  fed in batches of 64 through Master.Feed to a Replica with a no-op Applier over TCP (as
  BenchmarkStreamTCP); a 256 MiB snapshot from a Snapshotter of zeroes to a discarding Loader over
  TCP, replica start to loaded (as BenchmarkSnapshotTransfer).
- RDB decode: `+"`redis-server --enable-debug-command yes`"+`, `+"`DEBUG POPULATE %[3]d key 100`"+`, 200
  `+"`HSET hash:i`"+` of 500 fields, `+"`redis-cli -p P --rdb FILE`"+`; then rdb.NewReader over the
  file (os.File, checksum verified) against `+"`redis-check-rdb FILE`"+` (process wall time).
  github.com/hdt3213/rdb is not served by the module proxy here (`+"`go list -m github.com/hdt3213/rdb@latest`"+`
  fails), so redis-check-rdb is the rival.
`, o.keys, strings.Join(benchmarkArgs(0, o.requests)[2:], " "), o.keys)
}

// streamRows are the table rows of one streaming comparison.
func streamRows(runs map[kind][]streamRun, label string) []row {
	kv, rd := runs[kindKV], runs[kindRedis]
	if len(kv) == 0 || len(rd) == 0 {
		return nil
	}
	var rows []row
	kos, ros := floats(kv, func(x streamRun) float64 { return x.ops }), floats(rd, func(x streamRun) float64 { return x.ops })
	ko, ro, or := median(kos), median(ros), median(perRun(kos, ros))
	resyncs := int64(0)
	for _, x := range kv {
		resyncs += x.resyncs
	}
	note := ""
	if resyncs > 0 {
		note = fmt.Sprintf(" (replica dropped and fully resynced %d times in %d runs)", resyncs, len(kv))
	}
	rows = append(rows, row{
		what: "2. Streaming, redis-benchmark SET -P 64 -c 50, one replica attached (ops/s)" + label,
		ours: fmt.Sprintf("%.0f%s", ko, note), rival: fmt.Sprintf("%.0f", ro), ratio: fmt.Sprintf("%.2fx", or), target: ">= 1.0x", met: yes(or >= 1),
	})
	kcs, rcs := durations(kv, func(x streamRun) time.Duration { return x.catchUp }), durations(rd, func(x streamRun) time.Duration { return x.catchUp })
	kc, rc, cr := median(kcs), median(rcs), median(perRun(secondsOf(kcs), secondsOf(rcs)))
	rows = append(rows, row{
		what: "2. Streaming: replica catch-up after the benchmark ends" + label,
		ours: millis(kc), rival: millis(rc), ratio: fmt.Sprintf("%.2fx", cr), target: "no slower (<= 1.0x)", met: yes(cr <= 1),
	})
	return rows
}
