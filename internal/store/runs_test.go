package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/store"
)

func TestCreateRunOncePerMergeCommit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	// Both deliveries of one merge race to create its run.
	var wg sync.WaitGroup
	created := make(chan bool, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := "push"
			if i%2 == 0 {
				src = "pull_request"
			}
			_, ok, err := s.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: "abc", Installation: 1, Branch: "main", Source: src})
			if err != nil {
				t.Error(err)
			}
			created <- ok
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for ok := range created {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d creations reported; want exactly 1", n)
	}
	runs, err := s.ListRuns(ctx, "acme/api", 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs = %d, %v; want 1", len(runs), err)
	}
}

func TestOpenRunsInMergeOrder(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	// Arrival order c, a, b; merge order a, b, c.
	for _, r := range []struct {
		sha string
		at  time.Duration
	}{{"c", 3 * time.Second}, {"a", time.Second}, {"b", 2 * time.Second}} {
		if _, _, err := s.CreateRun(ctx, store.Run{Repo: "acme/api", SHA: r.sha, Branch: "main", Source: "push", MergedAt: base.Add(r.at)}); err != nil {
			t.Fatal(err)
		}
	}
	s.CreateRun(ctx, store.Run{Repo: "acme/other", SHA: "z", Branch: "main", Source: "push"})
	done, _ := s.RunBySHA(ctx, "acme/api", "b")
	done.State, done.Version = store.RunReleased, "1.0.0"
	if err := s.UpdateRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenRunIDs(ctx, "acme/api")
	if err != nil {
		t.Fatal(err)
	}
	var shas []string
	for _, id := range open {
		r, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, r.SHA)
	}
	if fmt.Sprint(shas) != "[a c]" {
		t.Fatalf("open runs %v; want [a c] (merge order, released b left out)", shas)
	}
	repos, _ := s.ReposWithOpenRuns(ctx)
	if fmt.Sprint(repos) != "[acme/api acme/other]" {
		t.Fatalf("repos %v", repos)
	}
	got, err := s.GetRun(ctx, done.ID)
	if err != nil || got.Version != "1.0.0" || got.State != store.RunReleased {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRun(unknown) = %v", err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	must := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !must(s.AcquireLease(ctx, "release:acme/api", "a", time.Minute)) {
		t.Fatal("a could not take a free lease")
	}
	if must(s.AcquireLease(ctx, "release:acme/api", "b", time.Minute)) {
		t.Fatal("b took a lease a holds")
	}
	if !must(s.AcquireLease(ctx, "release:acme/api", "a", time.Minute)) {
		t.Fatal("a could not renew its own lease")
	}
	if !must(s.AcquireLease(ctx, "release:acme/other", "b", time.Minute)) {
		t.Fatal("leases of different names interfere")
	}
	if err := s.ReleaseLease(ctx, "release:acme/api", "b"); err != nil {
		t.Fatal(err)
	}
	if must(s.AcquireLease(ctx, "release:acme/api", "b", time.Minute)) {
		t.Fatal("a release by a non-holder freed the lease")
	}
	s.ReleaseLease(ctx, "release:acme/api", "a")
	if !must(s.AcquireLease(ctx, "release:acme/api", "b", -time.Millisecond)) {
		t.Fatal("b could not take a released lease")
	}
	// b's lease above expired at once: a dead holder's lease lapses.
	if !must(s.AcquireLease(ctx, "release:acme/api", "c", time.Minute)) {
		t.Fatal("c could not take an expired lease")
	}
}

func TestCheckRunIDs(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, ok, err := s.CheckRunID(ctx, "acme/api", "abc", "shipbot/preview"); ok || err != nil {
		t.Fatalf("unknown check run: %v, %v", ok, err)
	}
	s.SaveCheckRunID(ctx, "acme/api", "abc", "shipbot/preview", 42)
	if id, ok, _ := s.CheckRunID(ctx, "acme/api", "abc", "shipbot/preview"); !ok || id != 42 {
		t.Fatalf("got %d, %v; want 42", id, ok)
	}
}
