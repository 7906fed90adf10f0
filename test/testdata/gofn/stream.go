package main

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// stream answers with a body the function writes as it goes, which
// aws-lambda-go sends to the Runtime API chunk by chunk:
//
//	stream      "first chunk;", a pause of ms (or, with value, until a GET of the
//	            URL value answers), "second chunk"
//	streambig   mb megabytes of a repeating pattern (streamPattern), in 64 KB writes
//	streamfail  "partial;", then the body fails: the error goes in the trailers
func stream(ev event) (io.Reader, error) {
	pr, pw := io.Pipe()
	go func() {
		switch ev.Op {
		case "stream":
			_, _ = pw.Write([]byte("first chunk;"))
			second := "second chunk"
			if ev.Value != "" {
				if err := waitFor(ev.Value); err != nil {
					second = "the gate failed: " + err.Error()
				}
			} else {
				time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
			}
			_, _ = pw.Write([]byte(second))
			pw.Close()
		case "streambig":
			buf := make([]byte, 64<<10)
			for i := range buf {
				buf[i] = streamPattern[i%len(streamPattern)]
			}
			for left := ev.MB << 20; left > 0; left -= len(buf) {
				if _, err := pw.Write(buf[:min(left, len(buf))]); err != nil {
					return
				}
			}
			pw.Close()
		case "streamfail":
			_, _ = pw.Write([]byte("partial;"))
			pw.CloseWithError(errors.New("the stream broke"))
		}
	}()
	return pr, nil
}

// waitFor GETs url and waits for its answer.
func waitFor(url string) error {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// streamPattern repeats through streambig's body; 64 KB is a multiple of its length.
const streamPattern = "0123456789abcdef"
