package main

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// fullResyncRun is one full resync: the time from the replica's start until
// it holds every key, and the bytes the master sent.
type fullResyncRun struct {
	d     time.Duration
	bytes int64
}

// fullResync loads keys keys into one master of each kind, then starts
// runs replicas of each (alternating kinds), one at a time, each timed from
// its process start until DBSIZE shows every key.
func (e *env) fullResync(keys, runs int, logf func(string, ...any)) (map[kind][]fullResyncRun, error) {
	data := dataset(keys)
	res := map[kind][]fullResyncRun{}
	masters := map[kind]*server{}
	for _, k := range []kind{kindKV, kindRedis} {
		m, err := e.start(k, 0)
		if err != nil {
			return nil, err
		}
		defer m.stop()
		d, err := pipeline(m.addr(), data, keys)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", k, err)
		}
		c, err := dial(m.addr())
		if err != nil {
			return nil, err
		}
		n, err := c.dbsize()
		c.Close()
		if err != nil || n != int64(keys) {
			return nil, fmt.Errorf("%s master holds %d keys after the load (%v)", k, n, err)
		}
		logf("loaded %d keys into the %s master in %v (%.0f SET/s)", keys, k, d.Round(time.Millisecond), float64(keys)/d.Seconds())
		masters[k] = m
	}
	for i := range runs {
		for _, k := range []kind{kindKV, kindRedis} {
			r, err := e.fullResyncOnce(masters[k], keys)
			if err != nil {
				return nil, fmt.Errorf("%s full resync: %w", k, err)
			}
			logf("full resync %d/%d %-8s %v (%.1f MB sent)", i+1, runs, k, r.d.Round(time.Millisecond), float64(r.bytes)/1e6)
			res[k] = append(res[k], r)
		}
	}
	return res, nil
}

func (e *env) fullResyncOnce(m *server, keys int) (fullResyncRun, error) {
	mc, err := dial(m.addr())
	if err != nil {
		return fullResyncRun{}, err
	}
	defer mc.Close()
	sent0, _ := mc.infoInt("stats", "total_net_repl_output_bytes")
	start := time.Now()
	r, err := e.start(m.kind, m.port)
	if err != nil {
		return fullResyncRun{}, err
	}
	defer func() {
		r.stop()
		// Let the master notice the closed link before the next run.
		time.Sleep(300 * time.Millisecond)
	}()
	rc, err := dial(r.addr())
	if err != nil {
		return fullResyncRun{}, err
	}
	defer rc.Close()
	deadline := start.Add(5 * time.Minute)
	for {
		n, err := rc.dbsize()
		if err != nil {
			return fullResyncRun{}, err
		}
		if n == int64(keys) {
			break
		}
		if time.Now().After(deadline) {
			return fullResyncRun{}, fmt.Errorf("replica holds %d keys after %v", n, time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(start)
	sent1, _ := mc.infoInt("stats", "total_net_repl_output_bytes")
	return fullResyncRun{d: d, bytes: sent1 - sent0}, nil
}

// streamRun is one redis-benchmark run against a master with one replica.
type streamRun struct {
	ops     float64       // SET/s reported by redis-benchmark
	catchUp time.Duration // from the benchmark's end until the replica's offset equals the master's
	lag     int64         // bytes the replica was behind at the first poll after the benchmark's end
	poll1   time.Duration // how long that first poll took
	mpoll1  time.Duration // how long its master part took
	polls   int           // polls until caught up
	resyncs int64         // full resyncs the master counted during the benchmark (the replica fell too far behind)
}

var rpsRE = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

// streaming runs redis-benchmark against a fresh master/replica pair of
// each kind, alternating, runs times each.
func (e *env) streaming(n, runs int, kvFlags []string, logf func(string, ...any)) (map[kind][]streamRun, error) {
	res := map[kind][]streamRun{}
	for i := range runs {
		for _, k := range []kind{kindKV, kindRedis} {
			r, err := e.streamingOnce(k, n, kvFlags)
			if err != nil {
				return nil, fmt.Errorf("%s streaming: %w", k, err)
			}
			logf("streaming%s %d/%d %-8s %.0f SET/s, catch-up %v (%d B behind at %v (master %v), %d polls), %d full resyncs during the run", strings.Join(append([]string{""}, kvFlags...), " "), i+1, runs, k, r.ops, r.catchUp.Round(100*time.Microsecond), r.lag, r.poll1.Round(10*time.Microsecond), r.mpoll1.Round(10*time.Microsecond), r.polls, r.resyncs)
			res[k] = append(res[k], r)
		}
	}
	return res, nil
}

func benchmarkArgs(port, n int) []string {
	return []string{"-p", strconv.Itoa(port), "-t", "set", "-n", strconv.Itoa(n), "-P", "64", "-d", "100", "-c", "50", "-r", "1000000", "-q"}
}

func (e *env) streamingOnce(k kind, n int, kvFlags []string) (streamRun, error) {
	m, err := e.start(k, 0, kvFlags...)
	if err != nil {
		return streamRun{}, err
	}
	defer m.stop()
	r, err := e.start(k, m.port, kvFlags...)
	if err != nil {
		return streamRun{}, err
	}
	defer r.stop()
	// A first write so the offsets are non-zero, then wait for the link.
	mc, err := dial(m.addr())
	if err != nil {
		return streamRun{}, err
	}
	defer mc.Close()
	if _, err := mc.do("SET", "warmup", "1"); err != nil {
		return streamRun{}, err
	}
	if err := waitSynced(m, r, 30*time.Second); err != nil {
		return streamRun{}, err
	}
	rc, err := dial(r.addr())
	if err != nil {
		return streamRun{}, err
	}
	defer rc.Close()
	full0, err := mc.infoInt("stats", "sync_full")
	if err != nil {
		return streamRun{}, err
	}
	out, err := exec.Command("redis-benchmark", benchmarkArgs(m.port, n)...).CombinedOutput()
	end := time.Now()
	if err != nil {
		return streamRun{}, fmt.Errorf("redis-benchmark: %v: %s", err, out)
	}
	var run streamRun
	for first := true; ; first = false {
		mo, err := mc.infoInt("replication", "master_repl_offset")
		if err != nil {
			return streamRun{}, err
		}
		if first {
			run.mpoll1 = time.Since(end)
		}
		ri, err := rc.info("replication")
		if err != nil {
			return streamRun{}, err
		}
		ro, _ := strconv.ParseInt(ri["slave_repl_offset"], 10, 64)
		run.polls++
		if first {
			run.lag = mo - ro
			run.poll1 = time.Since(end)
		}
		// A replica dropped during the run may be in a full resync: it has
		// caught up once its link is up again with the master's offset.
		if ro >= mo && ri["master_link_status"] == "up" && ri["master_sync_in_progress"] == "0" {
			run.catchUp = time.Since(end)
			break
		}
		if time.Since(end) > time.Minute {
			return streamRun{}, fmt.Errorf("replica at %d, master at %d a minute after the benchmark", ro, mo)
		}
		time.Sleep(100 * time.Microsecond)
	}
	ms := rpsRE.FindAllSubmatch(out, -1)
	if len(ms) == 0 {
		return streamRun{}, fmt.Errorf("no SET rate in redis-benchmark's output: %q", out)
	}
	run.ops, _ = strconv.ParseFloat(string(ms[len(ms)-1][1]), 64)
	full1, err := mc.infoInt("stats", "sync_full")
	if err != nil {
		return streamRun{}, err
	}
	run.resyncs = full1 - full0
	return run, nil
}

// partialRun is one CLIENT KILL TYPE master on a replica under load.
type partialRun struct {
	d       time.Duration // from the kill until the replica streams again
	counted time.Duration // from the kill until the master counted the resync
	polls   int           // INFO polls in between
	partial bool          // the master counted a partial resync and no full one
}

// partialResync kills the replica's link kills times per pair while a
// writer keeps SETs flowing to the master, alternating pairs.
func (e *env) partialResync(kills int, logf func(string, ...any)) (map[kind][]partialRun, error) {
	type pair struct {
		m, r *server
		w    *writer
	}
	pairs := map[kind]*pair{}
	for _, k := range []kind{kindKV, kindRedis} {
		m, err := e.start(k, 0)
		if err != nil {
			return nil, err
		}
		defer m.stop()
		r, err := e.start(k, m.port)
		if err != nil {
			return nil, err
		}
		defer r.stop()
		w, err := startWriter(m.addr(), 500*time.Microsecond)
		if err != nil {
			return nil, err
		}
		defer w.Stop()
		if err := waitSynced(m, r, 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		pairs[k] = &pair{m: m, r: r, w: w}
	}
	res := map[kind][]partialRun{}
	for i := range kills {
		for _, k := range []kind{kindKV, kindRedis} {
			p := pairs[k]
			time.Sleep(300 * time.Millisecond)
			run, err := killOnce(p.m, p.r)
			if err != nil {
				return nil, fmt.Errorf("%s kill %d: %w", k, i+1, err)
			}
			how := "partial"
			if !run.partial {
				how = "NOT partial"
			}
			logf("link kill %d/%d %-8s streaming again after %v (%s; resync counted by the master at %v, %d polls)", i+1, kills, k, run.d.Round(10*time.Microsecond), how, run.counted.Round(10*time.Microsecond), run.polls)
			res[k] = append(res[k], run)
		}
	}
	return res, nil
}

// killOnce cuts the replica's link with CLIENT KILL TYPE master and polls
// until the master has counted a new resync and the replica's link is up
// with its offset past where it was just before the kill.
func killOnce(m, r *server) (partialRun, error) {
	mc, err := dial(m.addr())
	if err != nil {
		return partialRun{}, err
	}
	defer mc.Close()
	rc, err := dial(r.addr())
	if err != nil {
		return partialRun{}, err
	}
	defer rc.Close()
	st0, err := mc.info("stats")
	if err != nil {
		return partialRun{}, err
	}
	off, err := rc.infoInt("replication", "slave_repl_offset")
	if err != nil {
		return partialRun{}, err
	}
	start := time.Now()
	if n, err := rc.do("CLIENT", "KILL", "TYPE", "master"); err != nil || n != int64(1) {
		return partialRun{}, fmt.Errorf("CLIENT KILL TYPE master: %v %v", n, err)
	}
	resynced := false
	var counted time.Duration
	polls := 0
	for ; ; polls++ {
		if time.Since(start) > 30*time.Second {
			return partialRun{}, errors.New("the replica did not come back in 30 s")
		}
		if !resynced {
			st, err := mc.info("stats")
			if err != nil {
				return partialRun{}, err
			}
			resynced = st["sync_partial_ok"] != st0["sync_partial_ok"] || st["sync_full"] != st0["sync_full"]
			counted = time.Since(start)
			continue
		}
		ri, err := rc.info("replication")
		if err != nil {
			return partialRun{}, err
		}
		ro, _ := strconv.ParseInt(ri["slave_repl_offset"], 10, 64)
		if ri["master_link_status"] == "up" && ro > off {
			break
		}
	}
	d := time.Since(start)
	st1, err := mc.info("stats")
	if err != nil {
		return partialRun{}, err
	}
	partial := st1["sync_full"] == st0["sync_full"] && st1["sync_partial_ok"] != st0["sync_partial_ok"]
	return partialRun{d: d, partial: partial, counted: counted, polls: polls}, nil
}
