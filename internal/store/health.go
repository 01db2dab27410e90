package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// checkIntegrity runs PRAGMA quick_check on a freshly opened database. A
// file with damaged pages otherwise opens, answers the reads a readiness
// probe makes, and then fails every write that touches a bad page: the
// service looked ready while every delivery got a 500. quick_check reads
// every page once (seconds for a database of a few GB), which is what a
// start can afford; the full integrity_check also cross-checks every index
// entry and takes far longer.
func checkIntegrity(db *sql.DB, path string) error {
	const limit = 5 // problems reported; the first ones say enough
	rows, err := db.Query(fmt.Sprintf(`PRAGMA quick_check(%d)`, limit))
	if err != nil {
		return integrityError(path, err.Error())
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return integrityError(path, err.Error())
		}
		problems = append(problems, p)
	}
	if err := rows.Err(); err != nil {
		return integrityError(path, err.Error())
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return nil
	}
	return integrityError(path, strings.Join(problems, "; "))
}

// integrityError is one line: the service stops with it at start.
func integrityError(path, problems string) error {
	problems = strings.Join(strings.Fields(problems), " ") // SQLite's report has line breaks
	return fmt.Errorf("sqlite %s is damaged (PRAGMA quick_check: %s): restore it from a backup", path, problems)
}

// writeProbeEvery bounds how often Ready writes: /readyz is unauthenticated
// and every write costs an fsync on the one writer connection that
// deliveries also wait for, so callers within this interval share the last
// probe's result.
const writeProbeEvery = time.Second

// writeProbeTimeout bounds one probe, which is shared by every caller
// waiting for it and so does not run under any one caller's context.
const writeProbeTimeout = 5 * time.Second

type writeProbe struct {
	group singleflight.Group
	mu    sync.Mutex
	at    time.Time // when the last probe finished
	err   error     // its result
}

// probeWrite proves that the database can be written: it commits one row
// (the heartbeat), through the writer connection, with the fsync that
// every commit does. That is what a delivery needs. Cheaper proofs miss
// cases: a transaction rolled back never writes the WAL, so a full disk
// passes it; BEGIN IMMEDIATE proves the write lock but not the write.
func (s *queries) probeWrite(ctx context.Context) error {
	// The write runs at most once per writeProbeEvery, shared by every
	// caller waiting meanwhile, under its own timeout.
	p := &s.probe
	p.mu.Lock()
	if !p.at.IsZero() && time.Since(p.at) < writeProbeEvery {
		err := p.err
		p.mu.Unlock()
		return err
	}
	p.mu.Unlock()
	ch := p.group.DoChan("heartbeat", func() (any, error) {
		pctx, cancel := context.WithTimeout(context.Background(), writeProbeTimeout)
		defer cancel()
		_, err := s.w.ExecContext(pctx, `INSERT INTO heartbeat (id, at) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET at = excluded.at`, ms(time.Now()))
		p.mu.Lock()
		p.at, p.err = time.Now(), err
		p.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("no write finished in time: %w", ctx.Err())
	}
}
