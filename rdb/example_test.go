package rdb_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/psyncio/psync/rdb"
)

func Example() {
	// Write a small RDB...
	var buf bytes.Buffer
	w, err := rdb.NewWriter(&buf, rdb.WriterOptions{
		Aux: []rdb.AuxField{{Key: "redis-ver", Value: "7.0.15"}, {Key: "repl-offset", Value: "0"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = w.SelectDB(0, 2, 1)
	_ = w.WriteEntry(&rdb.Entry{Key: []byte("greeting"), Kind: rdb.KindString, String: []byte("hello"), ExpireAt: 1893456000000})
	_ = w.WriteEntry(&rdb.Entry{Key: []byte("queue"), Kind: rdb.KindList, List: [][]byte{[]byte("a"), []byte("b")}})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// ...and read it back, one key at a time.
	r := rdb.NewReader(&buf, rdb.ReaderOptions{SkipUnsupported: true})
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		// e is reused by the next call to Next: copy what you keep.
		switch e.Kind {
		case rdb.KindString:
			fmt.Printf("db%d %s %s = %q expires at %d\n", e.DB, e.Kind, e.Key, e.String, e.ExpireAt)
		case rdb.KindList:
			fmt.Printf("db%d %s %s = %q\n", e.DB, e.Kind, e.Key, e.List)
		}
	}
	fmt.Println("version", r.Version(), "redis", r.Aux()["redis-ver"])
	// Output:
	// db0 string greeting = "hello" expires at 1893456000000
	// db0 list queue = ["a" "b"]
	// version 10 redis 7.0.15
}
