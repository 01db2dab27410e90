// Package alarmtest runs a real Alertmanager for tests: the alarm checker's
// own tests and the rollout engine's use the same one.
package alarmtest

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// binaries are the names the binary goes by: Debian's
// prometheus-alertmanager package installs /usr/bin/prometheus-alertmanager,
// upstream release tarballs ship alertmanager.
var binaries = []string{"prometheus-alertmanager", "alertmanager"}

// syncBuffer collects the process's output; the process writes while a
// failing test may read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs a real Alertmanager on a free loopback port with clustering
// off and its state in a temporary directory, and returns its base URL once
// /-/ready answers. Without the binary the test is skipped locally, but
// fails under CI=true, where .ci/run installs it: a skipped safety test
// must not pass silently there.
func Start(t testing.TB) string {
	t.Helper()
	bin := ""
	for _, name := range binaries {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		msg := "no Alertmanager binary (apt-get install prometheus-alertmanager)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	const conf = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out syncBuffer
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no HA gossip: no second port, no peers to wait for
	)
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
			t.Logf("alertmanager output:\n%s", out.String())
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
			t.Fatalf("alertmanager exited: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s after 15s:\n%s", base, out.String())
		}
	}
}

// freeAddr picks a loopback port the kernel says is free. Another process
// could take it before Alertmanager binds; on loopback that race is remote,
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
