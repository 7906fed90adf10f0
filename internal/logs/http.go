package logs

import (
	"encoding/json"
	"net/http"
	"time"
)

// Handler serves GET /shoal/v1/functions/{name}/logs?since=RFC3339&follow=true as
// newline-delimited JSON records, flushing each line when following.
func (s *Store) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shoal/v1/functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		q := Query{Function: r.PathValue("name"), Follow: r.URL.Query().Get("follow") == "true"}
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				http.Error(w, "since: not an RFC 3339 time", http.StatusBadRequest)
				return
			}
			q.Since = t
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		if q.Follow && flusher != nil {
			flusher.Flush() // let the client see the headers before the first line
		}
		enc := json.NewEncoder(w)
		_ = s.Read(r.Context(), q, func(rec Record) error {
			if err := enc.Encode(rec); err != nil {
				return err
			}
			if q.Follow && flusher != nil {
				flusher.Flush()
			}
			return nil
		})
	})
	return mux
}
