package servicetest

import (
	"flag"
	"runtime"
	"strconv"
)

// WaitingTestsParallel makes go test run twice as many of a package's
// parallel tests at once as it would (-parallel defaults to GOMAXPROCS),
// unless -parallel is given. For a TestMain, before m.Run: packages whose
// tests mostly wait (on simulated deploys, GitHub's latency, leases, a
// real Prometheus's scrapes) rather than compute left cores idle. Under
// -race on 2 cores, alone: internal/pipeline 34 s -> 27 s.
func WaitingTestsParallel() {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		return
	}
	if err := flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0))); err != nil {
		panic(err) // only outside a test binary, which has the flag
	}
}
