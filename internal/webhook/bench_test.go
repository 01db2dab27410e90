package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shipbot/shipbot/internal/store"
	"github.com/shipbot/shipbot/internal/store/pgtest"
)

// benchPayload is a delivery of realistic size (GitHub's merged-PR payloads
// run 20-30 KB).
var benchPayload = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"action":"closed","installation":{"id":1},"repository":{"full_name":"acme/api"},"filler":"`)
	b.Write(bytes.Repeat([]byte("x"), 24<<10))
	b.WriteString(`"}`)
	return b.Bytes()
}()

func postBench(b *testing.B, r *rig, client *http.Client, id string, body []byte, sig string) {
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	// Drain the answer so that the connection is kept alive and reused:
	// closing an unread body makes Go's client drop the connection and
	// dial a new one for the next delivery.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkIntake is a delivery end to end over loopback: sign, send,
// verify, persist (fsync'd), acknowledge. Compare with
// BenchmarkIntakeRawInsert, the same row into the same database mode.
func BenchmarkIntake(b *testing.B) {
	r := newRig(b)
	client := r.srv.Client()
	b.SetBytes(int64(len(benchPayload)))
	for i := 0; b.Loop(); i++ {
		postBench(b, r, client, fmt.Sprint("d", i), benchPayload, signed(benchPayload))
	}
}

// TestMain keeps a PostgreSQL cluster the benchmarks start durable, so
// that they compare like with like: SQLite fsyncs every commit, and so
// does PostgreSQL by default.
func TestMain(m *testing.M) {
	pgtest.Durable = true
	pgtest.Main(m)
}

// databases are the stores the intake benchmarks run on: the embedded
// SQLite file, and PostgreSQL (pgtest's server: SHIPBOT_TEST_POSTGRES_URL,
// or a throwaway durable cluster on this machine's disk).
var databases = []struct {
	name string
	rig  func(testing.TB) *rig
}{
	{"sqlite", func(tb testing.TB) *rig { return newRig(tb) }},
	{"postgres", func(tb testing.TB) *rig {
		db := pgtest.NewDatabase(tb, "")
		s, err := store.OpenPostgres(context.Background(), db.URL)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); err != nil {
			tb.Fatal(err)
		}
		// Creating the database dirtied some megabytes of pages: flush
		// them now rather than have the server's checkpointer do it in
		// the middle of the measurement. (Needs a superuser, which
		// pgtest's own cluster has; elsewhere the run goes without.)
		if conn, err := pgx.Connect(context.Background(), db.URL); err == nil {
			_, _ = conn.Exec(context.Background(), `CHECKPOINT`)
			conn.Close(context.Background())
		}
		// A replica in service has its pool's connections open; a new
		// one to a new database costs the server tens of milliseconds
		// (a backend, its catalog caches). Open them before measuring.
		var wg sync.WaitGroup
		for w := range 10 {
			wg.Go(func() {
				for i := range 5 {
					if _, err := s.SaveDelivery(context.Background(), store.Delivery{ID: fmt.Sprintf("warm-%d-%d", w, i),
						Event: "pull_request", Action: "closed", Repo: "acme/api", Payload: benchPayload}); err != nil {
						tb.Error(err)
					}
				}
			})
		}
		wg.Wait()
		return serveIntake(tb, s)
	}},
}

// BenchmarkIntakeRawInsert is BenchmarkIntake's floor: the inbox insert
// alone.
func BenchmarkIntakeRawInsert(b *testing.B) {
	for _, db := range databases {
		b.Run(db.name, func(b *testing.B) { benchRawInsert(b, db.rig(b)) })
	}
}

func benchRawInsert(b *testing.B, r *rig) {
	ctx := context.Background()
	b.SetBytes(int64(len(benchPayload)))
	for i := 0; b.Loop(); i++ {
		if _, err := r.store.SaveDelivery(ctx, store.Delivery{ID: fmt.Sprint("d", i), Event: "pull_request", Action: "closed", Repo: "acme/api", Installation: 1, Payload: benchPayload}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntakeAt200PerSecond offers deliveries at GitHub's busy-hour
// pace (200/s, open loop: each is sent on schedule whether or not the
// previous one was answered) and reports the acknowledgement latency
// percentiles. The bar is p99 <= 5 ms.
func BenchmarkIntakeAt200PerSecond(b *testing.B) {
	for _, db := range databases {
		b.Run(db.name, func(b *testing.B) { benchAt200(b, db.rig(b)) })
	}
}

func benchAt200(b *testing.B, r *rig) {
	client := r.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	const rate = 200
	n := max(b.N, 400) // at least two seconds of traffic for a stable p99
	lat := make([]time.Duration, n)
	sig := signed(benchPayload)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			postBench(b, r, client, fmt.Sprint("d", i), benchPayload, sig)
			lat[i] = time.Since(start)
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkIntakeParallel is intake under concurrent deliveries, as GitHub
// sends them: group commit lets one fsync carry several deliveries.
func BenchmarkIntakeParallel(b *testing.B) {
	r := newRig(b)
	client := r.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	sig := signed(benchPayload)
	var n atomic.Int64
	b.SetBytes(int64(len(benchPayload)))
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			postBench(b, r, client, fmt.Sprint("d", n.Add(1)), benchPayload, sig)
		}
	})
}

// BenchmarkIntakeFsyncFloor measures this disk's durable-write floor in the
// directory the intake benchmarks use: write a block and fsync it, as
// SQLite does for every commit under synchronous=FULL (one delivery of
// GitHub's merged-PR size is about 32 KiB of WAL frames). An acknowledged
// delivery costs at least one of these, so their p99 bounds what the intake
// p99 can be. "overwrite" rewrites a page in place (a WAL reused after a
// checkpoint); "append" grows the file; "at200" paces the writes at 200/s,
// as BenchmarkIntakeAt200PerSecond does (400 of them; on a virtual disk the
// tail at that pace is not the tail back to back).
func BenchmarkIntakeFsyncFloor(b *testing.B) {
	for _, bc := range []struct {
		name   string
		size   int
		append bool
		rate   int
	}{
		{"overwrite-4KiB", 4 << 10, false, 0},
		{"append-32KiB", 32 << 10, true, 0},
		{"append-32KiB-at200", 32 << 10, true, 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			page := bytes.Repeat([]byte{0xa5}, bc.size)
			var lat []time.Duration
			var off int64
			write := func() {
				start := time.Now()
				if _, err := f.WriteAt(page, off); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if bc.append {
					off += int64(bc.size)
				}
			}
			if bc.rate == 0 {
				for b.Loop() {
					write()
				}
			} else {
				tick := time.NewTicker(time.Second / time.Duration(bc.rate))
				defer tick.Stop()
				for range max(b.N, 400) {
					<-tick.C
					write()
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

// reportPercentiles reports p50, p99 and the maximum of lat in ms.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
