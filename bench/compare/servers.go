package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// kind names the server implementation of a pair.
type kind string

const (
	kindKV    kind = "kvserver"
	kindRedis kind = "redis"
)

// server is one kvserver or redis-server process started by the program.
type server struct {
	kind kind
	port int
	log  string
	cmd  *exec.Cmd
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// env holds what every scenario needs: the binaries and a scratch directory.
type env struct {
	kvserver string // path of the built kvserver binary
	dir      string // scratch directory (logs, Redis's temporary RDBs)
	nextPort int
	extraKV  []string // extra kvserver flags (-kvflags)
	started  []*server
}

// freePort returns a port nothing listens on right now.
func (e *env) freePort() int {
	for {
		e.nextPort++
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(e.nextPort))
		if err == nil {
			ln.Close()
			return e.nextPort
		}
	}
}

// start runs a server of kind k; replicaOf > 0 makes it a replica of that
// port from its start; kvFlags are added to a kvserver's flags. It returns
// once the server accepts connections.
func (e *env) start(k kind, replicaOf int, kvFlags ...string) (*server, error) {
	port := e.freePort()
	s := &server{kind: k, port: port, log: filepath.Join(e.dir, fmt.Sprintf("%s-%d.log", k, port))}
	var args []string
	var bin string
	switch k {
	case kindKV:
		bin = e.kvserver
		args = []string{"--port", strconv.Itoa(port), "--repl-diskless-sync-delay", "0"}
		args = append(args, e.extraKV...)
		args = append(args, kvFlags...)
	case kindRedis:
		bin = "redis-server"
		args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--repl-diskless-sync-delay", "0", "--dir", e.dir, "--dbfilename", fmt.Sprintf("dump-%d.rdb", port),
			"--logfile", s.log, "--daemonize", "no", "--enable-debug-command", "yes"}
	}
	if replicaOf > 0 {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(replicaOf))
	}
	s.cmd = exec.Command(bin, args...)
	if k == kindKV {
		f, err := os.Create(s.log)
		if err != nil {
			return nil, err
		}
		s.cmd.Stdout, s.cmd.Stderr = f, f
		defer f.Close()
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	e.started = append(e.started, s)
	c, err := dialWait(s.addr(), 10*time.Second)
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%s on port %d did not start: %w", k, port, err)
	}
	c.Close()
	return s, nil
}

// stop kills the process and waits for it. Nothing is persisted, so there
// is nothing to shut down cleanly.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (e *env) stopAll() {
	for _, s := range e.started {
		s.stop()
	}
	e.started = nil
}

// waitSynced waits until the replica's link is up and its offset equals
// its master's.
func waitSynced(master, replica *server, timeout time.Duration) error {
	mc, err := dial(master.addr())
	if err != nil {
		return err
	}
	defer mc.Close()
	rc, err := dial(replica.addr())
	if err != nil {
		return err
	}
	defer rc.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ri, err := rc.info("replication")
		if err != nil {
			return err
		}
		mo, err := mc.infoInt("replication", "master_repl_offset")
		if err != nil {
			return err
		}
		ro, _ := strconv.ParseInt(ri["slave_repl_offset"], 10, 64)
		if ri["master_link_status"] == "up" && ri["master_sync_in_progress"] == "0" && ro >= mo && mo > 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("replica did not sync in time")
}

// buildKVServer builds examples/kvserver into dir.
func buildKVServer(root, dir string) (string, error) {
	out := filepath.Join(dir, "kvserver")
	cmd := exec.Command("go", "build", "-o", out, "./examples/kvserver")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/kvserver: %v\n%s", err, b)
	}
	return out, nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/psyncio/psync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the psync module")
		}
		dir = parent
	}
}
