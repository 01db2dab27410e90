// Package pgtest gives tests a real PostgreSQL server and a fresh database
// per test on it.
//
// The server is the one SHIPBOT_TEST_POSTGRES_URL names (its user needs
// CREATEDB), or else a throwaway cluster that the package starts itself,
// once per test binary, from the PostgreSQL server binaries on the machine
// (initdb and pg_ctl from /usr/lib/postgresql/*/bin, Debian's layout, the
// newest version there; else from PATH): in a temporary directory, on a
// free loopback port, with its unix socket in that directory, as a
// non-root user when the tests run as root (PostgreSQL refuses root), and
// with fsync and synchronous_commit off (a test cluster need not survive a
// power cut; Durable keeps them on, for benchmarks). Where neither exists
// the tests skip with one line saying how to enable them; under CI=true
// they fail instead, since .ci/run installs the server.
//
// A package whose tests use it calls Main from its TestMain: its tests then
// share one cluster, stopped when they end. Without Main, each test that
// asks for a server gets a cluster of its own, stopped when it ends (a few
// seconds each). A cluster left behind by a test binary that was killed is
// stopped and removed by the next one that starts.
//
// Each test's database is its own (NewDatabase): empty, or a copy of a
// template database, such as one a test migrated once. Copies are made a
// few ahead, and dropped in the background, so tests seldom wait for
// either.
package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names an existing server to test against instead of a throwaway
// cluster, as a postgres:// URL whose user may create databases.
const EnvURL = "SHIPBOT_TEST_POSTGRES_URL"

// enable is the one line a skipped test says.
const enable = "PostgreSQL tests skipped: set " + EnvURL + " to a server's URL, or install the PostgreSQL server (Debian: apt-get install postgresql) so the tests can start one"

var (
	mainCalled bool

	once   sync.Once
	srv    *server
	srvErr error // why there is no server; errNoServer: nothing to test against
)

var errNoServer = errors.New(enable)

// Durable, set before the first test asks for a server, keeps the
// throwaway cluster's commits durable (PostgreSQL's defaults: fsync,
// synchronous_commit), for benchmarks that compare durable writes with
// SQLite's. Tests leave it off.
var Durable bool

func durability() string {
	if Durable {
		return "# Durable: PostgreSQL's defaults, as a production server runs.\n"
	}
	return `# Durability is not wanted from a test cluster: nothing in it must survive
# a crash or power cut, and fsyncs would dominate the tests' time.
fsync = off
synchronous_commit = off
full_page_writes = off
`
}

// server is the PostgreSQL server the tests share.
type server struct {
	url     string        // admin URL: a database the user may connect to
	admin   *pgxpool.Pool // creates and drops the tests' databases
	version int           // server_version_num
	cluster *cluster      // nil for EnvURL's server

	mu      sync.Mutex
	copiers map[string]*copier // by template
	drops   sync.WaitGroup     // databases being dropped
}

// Main runs the tests of a package (call it from TestMain) and stops the
// throwaway cluster, if the tests started one, before the binary exits.
func Main(m *testing.M) {
	mainCalled = true
	code := m.Run()
	if srv != nil {
		srv.close()
	}
	os.Exit(code)
}

func get(tb testing.TB) *server {
	tb.Helper()
	var s *server
	var err error
	if mainCalled {
		once.Do(func() { srv, srvErr = start() })
		s, err = srv, srvErr
	} else {
		// Without Main nothing would stop a cluster shared by the
		// binary's tests, nor wait for the last databases to be
		// dropped: this test gets a server of its own (a cluster takes
		// seconds to start).
		if s, err = start(); err == nil {
			tb.Cleanup(s.close)
		}
	}
	if errors.Is(err, errNoServer) {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// close closes the admin pool and stops the cluster, if any.
func (s *server) close() {
	s.mu.Lock()
	var templates []string
	for t := range s.copiers {
		templates = append(templates, t)
	}
	s.mu.Unlock()
	for _, t := range templates {
		s.stopCopies(t)
	}
	s.drops.Wait()
	s.admin.Close()
	if s.cluster != nil {
		if err := s.cluster.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
}

func start() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &server{url: os.Getenv(EnvURL)}
	if s.url == "" {
		bin, err := findBinaries()
		if err != nil {
			return nil, err
		}
		if s.cluster, err = startCluster(ctx, bin); err != nil {
			return nil, err
		}
		s.url = s.cluster.url
	}
	admin, err := pgxpool.New(ctx, s.url)
	if err == nil {
		err = admin.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&s.version)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		if s.cluster != nil {
			_ = s.cluster.stop()
		}
		return nil, fmt.Errorf("pgtest: connect to %s: %w", redacted(s.url), err)
	}
	s.admin = admin
	return s, nil
}

// DB is a database a test made.
type DB struct {
	Name string
	URL  string
}

var nameRE = regexp.MustCompile(`[^a-z0-9]+`)

// NewDatabase creates a database for tb, dropped when tb ends: empty, or
// a copy of template when that is not "" (nobody may be connected to the
// template meanwhile). Its name is unique, made from tb's.
//
// Copies are made ahead: the first copy of a template starts a few more in
// the background, so a test that asks for one finds it ready instead of
// waiting for CREATE DATABASE (some 30 to 150 ms), and databases are
// dropped in the background too. Both matter when tests run in parallel
// on few CPUs, where the tests wait on the server, not on the CPU.
func NewDatabase(tb testing.TB, template string) DB {
	tb.Helper()
	s := get(tb)
	var db DB
	if template == "" {
		stem := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_")
		name := fmt.Sprintf("t_%.40s_%d_%d", stem, os.Getpid(), counter.next())
		var err error
		if db, err = s.create(name, ""); err != nil {
			tb.Fatal(err)
		}
	} else {
		var err error
		if db, err = s.copyOf(template); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		// Copies being made ahead go first: they hold the template.
		s.stopCopies(db.Name)
		if template == "" {
			if err := s.drop(db.Name); err != nil {
				tb.Error(err)
			}
			return
		}
		s.dropLater(db.Name)
	})
	return db
}

// copiesAhead is how many copies of a template wait ready for tests.
const copiesAhead = 4

// copier makes copies of one template ahead of the tests that take them.
type copier struct {
	ready chan DB
	err   error // why ready closed early; read after it closed
	stop  chan struct{}
	done  chan struct{}
}

func (s *server) copyOf(template string) (DB, error) {
	s.mu.Lock()
	c := s.copiers[template]
	if c == nil {
		c = &copier{ready: make(chan DB, copiesAhead-1), stop: make(chan struct{}), done: make(chan struct{})}
		if s.copiers == nil {
			s.copiers = map[string]*copier{}
		}
		s.copiers[template] = c
		go s.makeCopies(template, c)
	}
	s.mu.Unlock()
	db, ok := <-c.ready
	if !ok {
		return DB{}, cmp.Or(c.err, fmt.Errorf("pgtest: copy of %s: the template was dropped", template))
	}
	return db, nil
}

func (s *server) makeCopies(template string, c *copier) {
	defer close(c.done)
	defer close(c.ready)
	for {
		db, err := s.create(fmt.Sprintf("%.45s_c%d", template, counter.next()), template)
		if err != nil {
			c.err = err
			return
		}
		select {
		case c.ready <- db:
		case <-c.stop:
			s.dropLater(db.Name)
			return
		}
	}
}

// stopCopies stops making copies of template, if it is one, and drops
// those made ahead.
func (s *server) stopCopies(template string) {
	s.mu.Lock()
	c := s.copiers[template]
	delete(s.copiers, template)
	s.mu.Unlock()
	if c == nil {
		return
	}
	close(c.stop)
	for db := range c.ready {
		s.dropLater(db.Name)
	}
	<-c.done
}

func (s *server) create(name, template string) (DB, error) {
	q := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += ` TEMPLATE ` + pgx.Identifier{template}.Sanitize()
		// FILE_COPY (PostgreSQL 15's other strategy) copies the
		// template's files as they are, where WAL_LOG, the default,
		// writes every page to the WAL: measured here, 30 to 120 ms
		// against 60 to 150 ms for this schema.
		if s.version >= 150000 {
			q += ` STRATEGY = FILE_COPY`
		}
	}
	if _, err := s.admin.Exec(context.Background(), q); err != nil {
		return DB{}, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	u, err := url.Parse(s.url)
	if err != nil {
		return DB{}, fmt.Errorf("pgtest: %s: %w", EnvURL, err)
	}
	u.Path = "/" + name
	return DB{Name: name, URL: u.String()}, nil
}

func (s *server) drop(name string) error {
	q := `DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize()
	if s.version >= 130000 {
		q += ` WITH (FORCE)` // a connection the test left open does not keep it
	}
	if _, err := s.admin.Exec(context.Background(), q); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// dropLater drops the database in the background; close waits for it.
func (s *server) dropLater(name string) {
	s.drops.Add(1)
	go func() {
		defer s.drops.Done()
		if err := s.drop(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
}

var counter seq

type seq struct {
	mu sync.Mutex
	n  int
}

func (c *seq) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "the server"
}

// --- The throwaway cluster -------------------------------------------------

// findBinaries finds the directory holding initdb and pg_ctl.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// The newest version first: 9.6 < 15 < 16, by number.
	slices.SortFunc(dirs, func(a, b string) int {
		return -cmp.Compare(majorOf(a), majorOf(b))
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errNoServer
}

func majorOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// cluster is a PostgreSQL cluster in a temporary directory.
type cluster struct {
	bin, dir string
	as       *runAs // nil: as this process's user
	url      string
}

const dirPrefix = "shipbot-pgtest-"

func startCluster(ctx context.Context, bin string) (*cluster, error) {
	as, err := nonRoot()
	if err != nil {
		return nil, err
	}
	sweep(bin, as)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir, as: as}
	fail := func(err error) (*cluster, error) {
		_ = c.stop()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fail(err)
	}
	if as != nil {
		if err := os.Chown(dir, as.uid, as.gid); err != nil {
			return fail(fmt.Errorf("pgtest: hand %s to user %s: %w", dir, as.name, err))
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		conf := fmt.Sprintf(`
# pgtest: a throwaway cluster for tests.
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
max_connections = 300
%s`, port, strings.ReplaceAll(dir, "'", "''"), durability())
		if err := os.WriteFile(filepath.Join(data, "pgtest.conf"), []byte(conf), 0o644); err != nil {
			return fail(err)
		}
		if err := appendLine(filepath.Join(data, "postgresql.conf"), "include_if_exists = 'pgtest.conf'"); err != nil {
			return fail(err)
		}
		if as != nil {
			if err := os.Chown(filepath.Join(data, "pgtest.conf"), as.uid, as.gid); err != nil {
				return fail(err)
			}
		}
		out, err := c.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start")
		if err == nil {
			c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			return c, nil
		}
		// The port may have been taken between freePort and the start.
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log))
		}
	}
}

// stop stops the cluster at once (its data is thrown away) and removes its
// directory.
func (c *cluster) stop() error {
	var err error
	data := filepath.Join(c.dir, "data")
	if _, statErr := os.Stat(filepath.Join(data, "postmaster.pid")); statErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, e := c.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); e != nil {
			err = fmt.Errorf("pg_ctl stop: %w\n%s", e, out)
		}
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// run runs one of the server's programs, as the cluster's user, in its
// directory (the test's working directory may be closed to that user).
func (c *cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if c.as != nil {
		if err := c.as.apply(cmd); err != nil {
			return nil, err
		}
	}
	return cmd.CombinedOutput()
}

// sweep stops and removes the clusters of test binaries that died without
// stopping theirs (killed, or timed out). A directory without an owner
// file is a cluster being set up, unless it is old.
func sweep(bin string, as *runAs) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
				continue
			}
		} else if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
			continue
		}
		_ = (&cluster{bin: bin, dir: dir, as: as}).stop()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendLine(path, line string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.Contains(string(b), line) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, "\n"+line)
	return errors.Join(err, f.Close())
}

// runAs is the user the cluster runs as when the tests run as root.
type runAs struct {
	name     string
	uid, gid int
}

// nonRoot picks the user to run the cluster as: none (this process's)
// unless it is root; then postgres, which Debian's package creates, or
// nobody.
func nonRoot() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &runAs{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("pgtest: running as root, and there is no postgres or nobody user to run PostgreSQL as (it refuses root)")
}
