package keyed_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shipbot/shipbot/internal/keyed"
)

// One key's holders run one at a time; other keys do not wait for them.
func TestMutexSerializesPerKey(t *testing.T) {
	var k keyed.Mutex
	unlockA := k.Lock("a")
	k.Lock("b")() // another key is free while a is held

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer k.Lock("c")()
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d holders of one key at once; want 1", m)
	}

	// A second holder of a gets in only after the first let go: it sees
	// what the first wrote last.
	var released atomic.Bool
	got := make(chan bool)
	go func() {
		defer k.Lock("a")()
		got <- released.Load()
	}()
	released.Store(true)
	unlockA()
	if !<-got {
		t.Fatal("a second holder of a got in before the first unlocked")
	}
}
