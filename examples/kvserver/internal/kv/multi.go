package kv

import "github.com/psyncio/psync"

func cmdMulti(x *execCtx) {
	if x.c.multi {
		x.err("ERR MULTI calls can not be nested")
		return
	}
	x.c.multi = true
	x.ok()
}

func cmdDiscard(x *execCtx) {
	if !x.c.multi {
		x.err("ERR DISCARD without MULTI")
		return
	}
	x.c.resetMulti()
	x.ok()
}

// cmdExecTx runs the queued commands in one lock hold. Their writes are
// propagated together when the Exec call ends, wrapped in MULTI and EXEC
// when there is more than one.
func cmdExecTx(x *execCtx) {
	c := x.c
	if !c.multi {
		x.err("ERR EXEC without MULTI")
		return
	}
	if c.multiDirty {
		c.resetMulti()
		x.err("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	queue := c.queue
	c.resetMulti()
	x.out = psync.AppendArray(x.out, len(queue))
	for _, argv := range queue {
		cmd := lookupCommand(argv[0])
		if cmd.write && x.s.readOnly && !x.master {
			x.err(errReadOnly)
			continue
		}
		x.out = x.s.run(c, cmd, argv, nil, x.out, x.master)
	}
}
