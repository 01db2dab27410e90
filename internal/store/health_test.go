package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipbot/shipbot/internal/store"
)

// filledDB makes a migrated database at path holding enough deliveries to
// span a few hundred pages, and closes it (its WAL folded into the file).
func filledDB(t *testing.T, path string) {
	t.Helper()
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		d := store.Delivery{ID: fmt.Sprint("d-", i), Event: "push", Repo: "acme/api", Status: store.StatusDone,
			Payload: bytes.Repeat([]byte{'x'}, 3000)}
		if _, err := s.SaveDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A database file with damaged pages does not open: the service stops at
// start with one line naming the file, instead of answering /readyz 200
// and failing every delivery.
func TestOpenRefusesADamagedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	filledDB(t, path)

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Stat()
	const page = 4096
	if info.Size() < 100*page {
		t.Fatalf("database is %d bytes; want at least 100 pages to damage", info.Size())
	}
	// Garbage over pages 3-12 (table and index pages of the schema's
	// tables) and over ten pages in the middle; page 1, the header and
	// schema, stays intact, so SQLite still recognises the file.
	junk := make([]byte, 10*page)
	for _, at := range []int64{2 * page, (info.Size() / page / 2) * page} {
		rand.Read(junk)
		if _, err := f.WriteAt(junk, at); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	s, err := store.OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("a database with damaged pages opened")
	}
	t.Logf("refused: %v", err)
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "damaged") || strings.Contains(msg, "\n") {
		t.Errorf("error %q; want one line saying the file %s is damaged", msg, path)
	}
}

// A sound database passes the check (and an empty new one).
func TestOpenAcceptsASoundDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shipbot.db")
	filledDB(t, path)
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatalf("sound database: %v", err)
	}
	defer s.Close()
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready on a sound, writable database: %v", err)
	}
}

// /readyz must say 503 while the database cannot be written, although it
// still answers reads and its schema is current. The database here is one
// the process may not write: a file owned by another user, read-only to
// this one, in a directory it may write (so SQLite can keep its -wal and
// -shm files there). SQLite then opens the file read-only by itself.
//
// Permissions do not stop root, so under root the check runs in a child
// process (this test binary again) as the user nobody; otherwise the file
// is made read-only to the test's own user.
func TestReadyFailsWhileTheDatabaseCannotBeWritten(t *testing.T) {
	if os.Getenv(readOnlyChildEnv) != "" {
		t.Skip("the child's work is done by TestReadOnlyChild")
	}
	dir, err := os.MkdirTemp("", "shipbot-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "shipbot.db")
	filledDB(t, path)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() != 0 {
		if got := readyOnReadOnly(path); !strings.HasPrefix(got, "not ready: ") || !strings.Contains(got, "cannot be written") {
			t.Fatalf("Ready on a read-only database: %s; want not ready, cannot be written", got)
		}
		return
	}

	// As root: run TestReadOnlyChild as nobody, from a copy of the test
	// binary that nobody may execute.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "store.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestReadOnlyChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), readOnlyChildEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot start a process as nobody here (%v); run the tests as a non-root user to check this", err)
	}
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	var got string
	for _, line := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(line, "READY: "); ok {
			got = r
		}
	}
	if !strings.HasPrefix(got, "not ready: ") || !strings.Contains(got, "cannot be written") {
		t.Fatalf("Ready on a database its process may not write: %q; want not ready, cannot be written\n%s", got, out)
	}
	t.Logf("as nobody: %s", got)
}

const readOnlyChildEnv = "SHIPBOT_TEST_READONLY_DB"

// TestReadOnlyChild is the child of TestReadyFailsWhileTheDatabaseCannotBeWritten.
func TestReadOnlyChild(t *testing.T) {
	path := os.Getenv(readOnlyChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestReadyFailsWhileTheDatabaseCannotBeWritten")
	}
	fmt.Println("READY: " + readyOnReadOnly(path))
}

// readyOnReadOnly opens the database at path and reports what Ready says.
func readyOnReadOnly(path string) string {
	s, err := store.OpenSQLite(path)
	if err != nil {
		return "open failed: " + err.Error()
	}
	defer s.Close()
	// Reads still work: the failure below is about writing only.
	if _, err := s.InboxDepth(context.Background()); err != nil {
		return "read failed: " + err.Error()
	}
	if err := s.Ready(context.Background()); err != nil {
		return "not ready: " + err.Error()
	}
	return "ready"
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
