package report

import "sync"

// keyedMutex serializes work per key: writers of one check run or one PR's
// comment, where two racing first writes would otherwise create two.
// Entries are never removed; a process sees a bounded number of PRs and
// commits between restarts, and an entry is two words.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*sync.Mutex{}
	}
	m, ok := k.locks[key]
	if !ok {
		m = &sync.Mutex{}
		k.locks[key] = m
	}
	k.mu.Unlock()
	m.Lock()
	return m.Unlock
}
