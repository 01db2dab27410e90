// Package keyed serializes work per key: per pull request, per commit, per
// pipeline, where two writers racing would duplicate or interleave what
// one must do alone.
package keyed

import "sync"

// Mutex is a mutex per key. The zero value is ready to use. Entries are
// never removed: a process sees a bounded number of keys between restarts,
// and an entry is two words.
type Mutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Lock locks key and returns its unlock.
func (k *Mutex) Lock(key string) (unlock func()) {
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
