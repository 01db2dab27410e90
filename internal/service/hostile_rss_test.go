package service_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipbot/shipbot/internal/syncbuf"
	"github.com/shipbot/shipbot/internal/webhook"
)

// botProcess is `bot serve` running as its own process, so that what the
// test measures is the memory of the production binary and nothing else:
// not the test's own clients, and not the race detector's shadow memory
// (the test binary may be built with -race; the service binary never is).
type botProcess struct {
	cmd  *exec.Cmd
	URL  string
	logs *syncbuf.Buffer
}

// buildBot builds cmd/bot as production does (no -race, no test code).
func buildBot(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH to build cmd/bot:", err)
	}
	bin := filepath.Join(t.TempDir(), "bot")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/shipbot/shipbot/cmd/bot").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/bot: %v\n%s", err, out)
	}
	return bin
}

func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// startBot runs `bot serve` on a free loopback port with a fresh database
// and returns once it is listening. The environment is the test's minus
// anything that would change the service or the Go runtime's memory
// behaviour (SHIPBOT_*, GOGC, GOMEMLIMIT, GODEBUG).
func startBot(t *testing.T, bin string, extraEnv ...string) *botProcess {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SHIPBOT_") || name == "GOGC" || name == "GOMEMLIMIT" || name == "GODEBUG" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"SHIPBOT_LISTEN=127.0.0.1:0",
		"SHIPBOT_DB="+filepath.Join(t.TempDir(), "shipbot.db"),
		"SHIPBOT_APP_ID=1",
		"SHIPBOT_PRIVATE_KEY="+testKeyPEM(t),
		"SHIPBOT_WEBHOOK_SECRET="+string(secret),
		// Point the App at a closed port: nothing in these tests may need
		// GitHub, and nothing must reach the real one.
		"SHIPBOT_GITHUB_API_URL=http://127.0.0.1:1/",
		"SHIPBOT_LOG_LEVEL=info",
	)
	env = append(env, extraEnv...)
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &botProcess{cmd: cmd, logs: &syncbuf.Buffer{}}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
			t.Logf("bot serve logs (last %d lines):\n%s", min(len(lines), 40), strings.Join(lines[max(len(lines)-40, 0):], "\n"))
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
				addr <- rec.Addr
				sent = true
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-time.After(20 * time.Second):
		t.Fatalf("bot serve did not start listening within 20 s; logs:\n%s", p.logs.String())
	}
	return p
}

// memory reads the process's current and peak resident set (VmRSS,
// VmHWM) from /proc.
func (p *botProcess) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skip("no /proc to read the server's memory from:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	if peak == 0 {
		t.Skip("/proc/<pid>/status has no VmHWM")
	}
	return rss, peak
}

// filler is a request body of n bytes that is generated as it is read, so
// forty 25 MB bodies cost the client nothing.
type filler struct{ left int64 }

var fillerBlock = bytes.Repeat([]byte("a"), 64<<10)

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), f.left)], fillerBlock)
	f.left -= int64(n)
	return n, nil
}

// The design's bar for hostile input: RSS stays under 300 MB while 40
// clients send 25 MB unsigned bodies at once. The bodies carry a
// well-formed but wrong signature, so the service cannot refuse them
// from the headers: it has to read each body to find out. Half declare
// their length, half come chunked (the length unknown until the end).
func TestUnsignedBodiesAtOnceKeepRSSUnderBar(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/bot and sends 1 GB over loopback")
	}
	const (
		clients = 40
		bar     = 300 << 20
	)
	bot := startBot(t, buildBot(t))
	rss0, _ := bot.memory(t)

	wrongSig := "sha256=" + strings.Repeat("0", 64)
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := &filler{left: webhook.MaxBody}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, bot.URL+"/webhooks/github", body)
			if i%2 == 0 {
				req.ContentLength = webhook.MaxBody
			} else {
				req.ContentLength = -1 // chunked
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprint("hostile-", i))
			req.Header.Set("X-Hub-Signature-256", wrongSig)
			resp, err := client.Do(req)
			key := ""
			if err != nil {
				key = "error: " + err.Error()
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				key = strconv.Itoa(resp.StatusCode)
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					key += " without Retry-After"
				}
			}
			mu.Lock()
			answers[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rss, peak := bot.memory(t)
	t.Logf("%d clients × %d MB unsigned: answers %v in %v; server RSS %d MB before, %d MB after, peak (VmHWM) %d MB",
		clients, webhook.MaxBody>>20, answers, elapsed.Round(time.Millisecond), rss0>>20, rss>>20, peak>>20)

	for k := range answers {
		if k != "401" && k != "503" {
			t.Errorf("%d request(s) answered %q; want 401 (bad signature) or 503 with Retry-After (busy)", answers[k], k)
		}
	}
	if answers["401"] == 0 {
		t.Errorf("no body was read and refused for its signature (answers %v)", answers)
	}
	if peak >= bar {
		t.Errorf("server peak RSS %d MB; the bar is under %d MB", peak>>20, bar>>20)
	}

	// And the service still takes a real delivery afterwards.
	if code := deliver(t, bot.URL, "after-the-storm"); code != http.StatusAccepted {
		t.Errorf("signed delivery after the storm answered %d; want 202", code)
	}
}
