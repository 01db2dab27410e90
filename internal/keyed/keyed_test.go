package keyed_test

import (
	"sync"
	"testing"

	"github.com/shipbot/shipbot/internal/keyed"
)

// One key's holders run one at a time; other keys do not wait for them.
func TestMutexSerializesPerKey(t *testing.T) {
	var k keyed.Mutex
	unlockA := k.Lock("a")
	k.Lock("b")() // another key is free
	var wg sync.WaitGroup
	inside := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer k.Lock("c")()
			inside++ // the race detector catches two holders at once
		}()
	}
	wg.Wait()
	if inside != 50 {
		t.Fatalf("inside = %d", inside)
	}
	got := make(chan struct{})
	go func() { defer k.Lock("a")(); close(got) }()
	select {
	case <-got:
		t.Fatal("a second holder of a got in")
	default:
	}
	unlockA()
	<-got
}
