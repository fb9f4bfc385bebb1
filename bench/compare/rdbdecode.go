package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/psyncio/psync/rdb"
)

// makeRDB has a real redis-server write the decode benchmark's file:
// DEBUG POPULATE keys key 100, plus 200 hashes of 500 fields, fetched with
// redis-cli --rdb (exactly what a master sends a replica).
func (e *env) makeRDB(keys int) (string, error) {
	s, err := e.start(kindRedis, 0)
	if err != nil {
		return "", err
	}
	defer s.stop()
	c, err := dial(s.addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.do("DEBUG", "POPULATE", strconv.Itoa(keys), "key", "100"); err != nil {
		return "", err
	}
	// 200 HSETs of 500 fields each, pipelined.
	nc, err := net.Dial("tcp", s.addr())
	if err != nil {
		return "", err
	}
	defer nc.Close()
	bw := bufio.NewWriterSize(nc, 256<<10)
	for i := range 200 {
		fmt.Fprintf(bw, "*%d\r\n$4\r\nHSET\r\n", 2+2*500)
		key := fmt.Sprintf("hash:%d", i)
		fmt.Fprintf(bw, "$%d\r\n%s\r\n", len(key), key)
		for j := range 500 {
			f := fmt.Sprintf("field:%d", j)
			v := fmt.Sprintf("value:%d:%d:%s", i, j, "abcdefghij")
			fmt.Fprintf(bw, "$%d\r\n%s\r\n$%d\r\n%s\r\n", len(f), f, len(v), v)
		}
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	br := bufio.NewReader(nc)
	for range 200 {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line != ":500\r\n" {
			return "", fmt.Errorf("HSET replied %q", line)
		}
	}
	path := filepath.Join(e.dir, "decode.rdb")
	out, err := exec.Command("redis-cli", "-p", strconv.Itoa(s.port), "--rdb", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("redis-cli --rdb: %v: %s", err, out)
	}
	return path, nil
}

// decodeRDB reads the whole file with the rdb package (checksum verified,
// as redis-check-rdb does) and returns the time and the number of keys.
func decodeRDB(path string) (time.Duration, int, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := rdb.NewReader(f, rdb.ReaderOptions{})
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		n++
	}
	return time.Since(start), n, nil
}

// checkRDB runs redis-check-rdb on the file and returns its wall time.
func checkRDB(path string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.Command("redis-check-rdb", path).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("redis-check-rdb: %v: %s", err, out)
	}
	return d, nil
}
