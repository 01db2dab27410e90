// Package alarmtest runs a real Alertmanager and a real Prometheus for
// tests: the alarm checker's own tests and the rollout engine's use the
// same ones.
package alarmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/syncbuf"
)

// alertmanagers are the names the Alertmanager binary goes by: Debian's
// prometheus-alertmanager package installs /usr/bin/prometheus-alertmanager,
// upstream release tarballs ship alertmanager. Prometheus is prometheus in
// both.
var alertmanagers = []string{"prometheus-alertmanager", "alertmanager"}

// Start runs a real Alertmanager on a free loopback port with clustering
// off and its state in a temporary directory, and returns its base URL once
// /-/ready answers. Without the binary the test is skipped locally, but
// fails under CI=true, where .ci/run installs it: a skipped safety test
// must not pass silently there.
func Start(t testing.TB) string {
	t.Helper()
	const conf = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
	return run(t, server{
		what:     "Alertmanager",
		binaries: alertmanagers,
		pkg:      "prometheus-alertmanager",
		config:   conf,
		args: func(cfg, dir, addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--cluster.listen-address=", // no HA gossip: no second port, no peers to wait for
			}
		},
	})
}

// StartPrometheus runs a real Prometheus on a free loopback port with its
// TSDB in a temporary directory, scraping each of targets (host:port,
// serving /metrics) every second as job "demo", and returns its base URL
// once /-/ready answers. With no targets it scrapes nothing. Without the
// binary (Debian's prometheus package) it skips or fails as Start does.
func StartPrometheus(t testing.TB, targets ...string) string {
	t.Helper()
	conf := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
	if len(targets) > 0 {
		quoted := make([]string, len(targets))
		for i, tg := range targets {
			quoted[i] = strconv.Quote(tg)
		}
		conf += "scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [" + strings.Join(quoted, ", ") + "]\n"
	}
	return run(t, server{
		what:     "Prometheus",
		binaries: []string{"prometheus"},
		pkg:      "prometheus",
		config:   conf,
		args: func(cfg, dir, addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
			}
		},
	})
}

// server is how to run one of the servers above.
type server struct {
	what     string   // for messages
	binaries []string // names to look up in PATH, in order
	pkg      string   // the Debian package that installs it
	config   string   // the config file's content
	// args are the flags, given the config file, a temporary directory
	// for state and the loopback address to listen on.
	args func(cfg, dir, addr string) []string
}

// run starts s, stops it when the test ends and returns its base URL once
// /-/ready answers 200, within 15 s.
func run(t testing.TB, s server) string {
	t.Helper()
	bin := ""
	for _, name := range s.binaries {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		msg := fmt.Sprintf("no %s binary (apt-get install %s)", s.what, s.pkg)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(s.config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out syncbuf.Buffer
	cmd := exec.Command(bin, s.args(cfg, dir, addr)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", s.what, out.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", s.what, err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after 15s:\n%s", s.what, base, out.String())
		}
	}
}

// freeAddr picks a loopback port the kernel says is free. Another process
// could take it before the server binds; on loopback that race is remote,
// and a failure would show as "address in use".
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// PostAlert sends one alert to Alertmanager's API v2.
func PostAlert(t testing.TB, base string, labels map[string]string, startsAt, endsAt time.Time) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{{
		"labels":      labels,
		"annotations": map[string]string{"summary": "test"},
		"startsAt":    startsAt.UTC().Format(time.RFC3339Nano),
		"endsAt":      endsAt.UTC().Format(time.RFC3339Nano),
	}})
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}
}
