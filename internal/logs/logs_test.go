package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/bus"
)

func openStore(t *testing.T, dir string) (*Store, *bus.Bus) {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), b.JetStream(), Config{}, nil)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	return s, b
}

func readAll(t *testing.T, s *Store, q Query) []Record {
	t.Helper()
	var out []Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Read(ctx, q, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteReadAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, b := openStore(t, dir)
	t0 := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	for i := range 5 {
		s.WriteLog(Record{Function: "f", Version: "$LATEST", Stream: "s1", Time: t0.Add(time.Duration(i) * time.Second), Message: fmt.Sprint("line ", i)})
		s.WriteLog(Record{Function: "g", Version: "1", Stream: "s2", Time: t0, Message: "other"})
	}
	s.Close()
	got := readAll(t, s, Query{Function: "f"})
	if len(got) != 5 || got[0].Message != "line 0" || got[4].Message != "line 4" || got[2].Version != "$LATEST" {
		t.Fatalf("read %+v", got)
	}
	if none := readAll(t, s, Query{Function: "nobody"}); len(none) != 0 {
		t.Fatalf("unknown function has %d lines", len(none))
	}
	b.Close()

	s2, b2 := openStore(t, dir)
	defer b2.Close()
	defer s2.Close()
	if got := readAll(t, s2, Query{Function: "g"}); len(got) != 5 {
		t.Fatalf("after restart: %d lines of g, want 5", len(got))
	}
}

func TestFollowOverHTTP(t *testing.T) {
	s, b := openStore(t, t.TempDir())
	defer b.Close()
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/shoal/v1/functions/f/logs?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() {
		for i := range 3 {
			s.WriteLog(Record{Function: "f", Time: time.Now(), Message: fmt.Sprint("live ", i)})
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	for i := range 3 {
		if !sc.Scan() {
			t.Fatalf("stream ended after %d lines: %v", i, sc.Err())
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint("live ", i); rec.Message != want {
			t.Fatalf("line %d = %q, want %q", i, rec.Message, want)
		}
	}
}
