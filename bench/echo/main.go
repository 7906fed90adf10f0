// Command echo is the plain Go net/http server the invoke benchmarks compare
// shoal against: it reads the body, decodes it as JSON, encodes it again and
// writes it back — the same work an echo function does, without any platform.
// A body {"op":"sleep","ms":N} sleeps N ms first, as the test function does.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18080", "address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var v json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var op struct {
			Op string `json:"op"`
			Ms int    `json:"ms"`
		}
		if json.Unmarshal(b, &op) == nil && op.Op == "sleep" {
			time.Sleep(time.Duration(op.Ms) * time.Millisecond)
		}
		out, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
