package kv

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// step is one command and its exact reply.
type step struct{ cmd, reply string }

func runSteps(t *testing.T, s *Store, c *Client, steps []step) {
	t.Helper()
	for _, st := range steps {
		assert.Equal(t, st.reply, run(s, c, st.cmd), "command %q", st.cmd)
	}
}

// TestReplies covers what the redis-server comparison leaves out (orders
// that are random in Redis, clock-dependent replies) and restates the main
// error replies in readable form.
func TestReplies(t *testing.T) {
	clock := newFakeClock()
	s := New(Options{Now: clock.Now})
	var c Client
	runSteps(t, s, &c, []step{
		{"PING", "+PONG\r\n"},
		{"nosuch a b", "-ERR unknown command 'nosuch', with args beginning with: 'a' 'b' \r\n"},
		{"nosuch", "-ERR unknown command 'nosuch', with args beginning with: \r\n"},
		{"GET", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"SeT k v", "+OK\r\n"},
		{"LPUSH k x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"INCR k", "-ERR value is not an integer or out of range\r\n"},
		{"INCRBYFLOAT k 1", "-ERR value is not a valid float\r\n"},
		{"SET n 9223372036854775807", "+OK\r\n"},
		{"INCR n", "-ERR increment or decrement would overflow\r\n"},
		{"SET k v PX 1500", "+OK\r\n"},
		{"PTTL k", ":1500\r\n"},
		{"TTL k", ":2\r\n"},
		{"SET s v EX 10", "+OK\r\n"},
		{"TTL s", ":10\r\n"},
		{"SADD set b a c", ":3\r\n"},
		{"SMEMBERS set", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"KEYS *", "*4\r\n$1\r\nk\r\n$1\r\nn\r\n$1\r\ns\r\n$3\r\nset\r\n"},
		{"KEYS s*", "*2\r\n$1\r\ns\r\n$3\r\nset\r\n"},
		{"DBSIZE", ":4\r\n"},
		{"HSET h z 1 a 2 m 3", ":3\r\n"},
		{"HDEL h a", ":1\r\n"},
		{"HSET h a 4", ":1\r\n"},
		{"HGETALL h", "*6\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\nm\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n4\r\n"},
	})
	// Expiry is lazy: once past its time the key is gone and DBSIZE drops
	// when something touches it.
	clock.Advance(1600 * time.Millisecond)
	runSteps(t, s, &c, []step{
		{"DBSIZE", ":5\r\n"},
		{"KEYS *", "*4\r\n$1\r\nh\r\n$1\r\nn\r\n$1\r\ns\r\n$3\r\nset\r\n"},
		{"GET k", "$-1\r\n"},
		{"DBSIZE", ":4\r\n"},
		{"TTL k", ":-2\r\n"},
		{"TTL s", ":8\r\n"},
		{"PTTL s", ":8400\r\n"},
		{"TTL set", ":-1\r\n"},
	})
}

func TestSPopReplies(t *testing.T) {
	s := New(Options{})
	var c Client
	run(s, &c, "SADD s a b c d e")
	one := run(s, &c, "SPOP s")
	assert.Regexp(t, `^\$1\r\n[a-e]\r\n$`, one)
	assert.Regexp(t, `^\*2\r\n\$1\r\n[a-e]\r\n\$1\r\n[a-e]\r\n$`, run(s, &c, "SPOP s 2"))
	assert.Equal(t, ":2\r\n", run(s, &c, "SCARD s"))
	assert.Regexp(t, `^\*2\r\n`, run(s, &c, "SPOP s 10"))
	assert.Equal(t, ":0\r\n", run(s, &c, "EXISTS s"))
}

func TestScan(t *testing.T) {
	s := New(Options{})
	var c Client
	want := map[string]bool{}
	for i := range 95 {
		k := "key:" + itoa(i)
		run(s, &c, "SET "+k+" v")
		want[k] = true
	}
	run(s, &c, "RPUSH list:1 a")
	runSteps(t, s, &c, []step{
		{"SCAN x", "-ERR invalid cursor\r\n"},
		{"SCAN 0 COUNT 0", "-ERR syntax error\r\n"},
		{"SCAN 0 COUNT x", "-ERR value is not an integer or out of range\r\n"},
		{"SCAN 0 FOO bar", "-ERR syntax error\r\n"},
		{"SCAN 0 MATCH", "-ERR syntax error\r\n"},
		{"SCAN 0 TYPE list COUNT 1000", "*2\r\n$1\r\n0\r\n*1\r\n$6\r\nlist:1\r\n"},
	})

	// Walk with a small count while keys are added and removed: every key
	// present throughout is returned.
	seen := map[string]bool{}
	cursor := "0"
	for rounds := 0; ; rounds++ {
		require.Less(t, rounds, 100)
		reply := s.Exec(&c, args("SCAN "+cursor+" MATCH key:* COUNT 7"), nil)
		parts := strings.Split(string(reply), "\r\n")
		cursor = parts[2]
		for i := 5; i < len(parts); i += 2 {
			seen[parts[i]] = true
		}
		run(s, &c, "SET extra:"+itoa(rounds)+" v")
		if cursor == "0" {
			break
		}
	}
	assert.Equal(t, want, seen)
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything", true},
		{"*", "", false}, // as Redis: the loop never runs on an empty string
		{"", "", true},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"a*b*c*d*e*f*g*h*i*j*k*l*m", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"user:*:name", "user:42:name", true},
		{"[abc", "a", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, globMatch([]byte(tt.pattern), []byte(tt.s), false), "%q ~ %q", tt.pattern, tt.s)
	}
}

func TestIncrByFloatFormatting(t *testing.T) {
	// Replies seen from redis-server 7.0.15, which computes in long double.
	s := New(Options{})
	var c Client
	runSteps(t, s, &c, []step{
		{"INCRBYFLOAT a 10.5", "$4\r\n10.5\r\n"},
		{"INCRBYFLOAT a 0.1", "$4\r\n10.6\r\n"},
		{"INCRBYFLOAT b 1000", "$4\r\n1000\r\n"},
		{"INCRBYFLOAT b 0.1", "$22\r\n1000.09999999999999998\r\n"},
		{"INCRBYFLOAT c 5.0e3", "$4\r\n5000\r\n"},
		{"INCRBYFLOAT c -5000", "$1\r\n0\r\n"},
		{"INCRBYFLOAT c -0.0", "$1\r\n0\r\n"},
		{"INCRBYFLOAT c inf", "-ERR increment would produce NaN or Infinity\r\n"},
		{"INCRBYFLOAT c 1e5000", "-ERR value is not a valid float\r\n"},
		{"INCRBYFLOAT c ' 1'", "-ERR wrong number of arguments for 'incrbyfloat' command\r\n"},
		{"INCRBYFLOAT c 0x10", "$2\r\n16\r\n"},
	})
}

func TestClientState(t *testing.T) {
	s := New(Options{Databases: 4})
	var c Client
	assert.Equal(t, 4, s.Databases())
	assert.Equal(t, "-ERR DB index is out of range\r\n", run(s, &c, "SELECT 4"))
	assert.Equal(t, "+OK\r\n", run(s, &c, "SELECT 3"))
	assert.Equal(t, 3, c.DB)
	assert.Equal(t, "", run(s, &c, ""))
	assert.False(t, c.InMulti())
	run(s, &c, "MULTI")
	assert.True(t, c.InMulti())
	assert.Equal(t, "-ERR MULTI calls can not be nested\r\n", run(s, &c, "MULTI"))
	assert.Equal(t, "+OK\r\n", run(s, &c, "DISCARD"))
	assert.False(t, c.InMulti())
	assert.True(t, s.Known([]byte("ZaDd")))
	assert.False(t, s.Known([]byte("info")))

	run(s, &c, "SET a 1 EX 10")
	run(s, &c, "SET b 1")
	keys, expires := s.DBStats(3)
	assert.Equal(t, 2, keys)
	assert.Equal(t, 1, expires)

	var got []string
	s.Locked(func() { got = append(got, "inside") })
	assert.Equal(t, []string{"inside"}, got)
}

func BenchmarkRPush(b *testing.B) {
	s := New(Options{})
	var c Client
	argv := args("RPUSH list value")
	var out []byte
	for b.Loop() {
		out = s.Exec(&c, argv, out[:0])
	}
}

func TestClassify(t *testing.T) {
	s := New(Options{})
	for name, want := range map[string][2]bool{
		"set": {true, true}, "GET": {true, false}, "Exec": {true, false}, "del": {true, true},
		"info": {false, false}, "nosuchcommandatall": {false, false},
	} {
		known, write := s.Classify([]byte(name))
		assert.Equal(t, want, [2]bool{known, write}, name)
		assert.Equal(t, known, s.Known([]byte(name)), name)
		assert.Equal(t, write, s.IsWrite([]byte(name)), name)
	}
}
