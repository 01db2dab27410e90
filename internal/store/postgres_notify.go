package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notifier carries wake-ups between the processes that share a database:
// a change one replica makes for work another drives (a callback, a
// command for a rollout another replica's engine runs) reaches that
// replica at once instead of at its next poll. The PostgreSQL store
// implements it with LISTEN/NOTIFY; the SQLite store has one process per
// file and no need of it. Callers find it by a type assertion.
//
// Delivery is best effort, as a wake-up may be: a notification tells a
// process to look now, never what to do, and the work must still be found
// by polling if it is lost.
type Notifier interface {
	// Notify sends payload (at most some 8000 bytes) on channel to every
	// process listening on it, this one included, once the call returns.
	Notify(ctx context.Context, channel, payload string) error
	// Listen delivers the payloads sent on channel from now on, until ctx
	// ends; then the channel closes (as it does when the store closes).
	// A listener that falls more than a few payloads behind loses the
	// newer ones. After a gap in which notifications may have been lost
	// (the connection to the database broke and came back), it receives
	// "": look at everything.
	Listen(ctx context.Context, channel string) (<-chan string, error)
}

var _ Notifier = (*Postgres)(nil)

// listenBuffer is how many payloads a slow listener may have waiting.
const listenBuffer = 16

// Notify implements Notifier.
func (s *Postgres) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// Listen implements Notifier. Every Listen of a store shares one
// connection of its own (outside the pool), opened on first use; it
// LISTENs to the channels that have listeners, and reconnects when it
// breaks.
func (s *Postgres) Listen(ctx context.Context, channel string) (<-chan string, error) {
	if channel == "" {
		return nil, errors.New("listen: empty channel name")
	}
	s.listenOnce.Do(func() { s.listener = newPGListener(s) })
	if s.listener == nil { // closed before any Listen
		return nil, fmt.Errorf("listen %s: %w", channel, errClosed)
	}
	return s.listener.subscribe(ctx, channel)
}

// pgListener is the store's LISTEN connection and its subscribers.
type pgListener struct {
	s *Postgres

	mu     sync.Mutex
	subs   map[string]map[chan string]struct{} // by channel
	closed bool
	// listened are the channels the connection has LISTENed to; ready
	// closes when a channel a subscriber waits for is. Listen returns only
	// then, so "from now on" holds: a Notify after Listen returns is heard.
	listened map[string]bool
	ready    map[string]chan struct{}
	// poke interrupts the wait for a notification: the set of channels
	// changed, or the listener is closing.
	poke chan struct{}

	stop chan struct{}
	done chan struct{}
}

func newPGListener(s *Postgres) *pgListener {
	l := &pgListener{s: s, subs: map[string]map[chan string]struct{}{},
		listened: map[string]bool{}, ready: map[string]chan struct{}{},
		poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *pgListener) subscribe(ctx context.Context, channel string) (<-chan string, error) {
	ch := make(chan string, listenBuffer)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("listen %s: %w", channel, errClosed)
	}
	if l.subs[channel] == nil {
		l.subs[channel] = map[chan string]struct{}{}
	}
	l.subs[channel][ch] = struct{}{}
	var ready chan struct{}
	if !l.listened[channel] {
		if ready = l.ready[channel]; ready == nil {
			ready = make(chan struct{})
			l.ready[channel] = ready
		}
	}
	l.mu.Unlock()
	l.wake()
	go func() {
		select {
		case <-ctx.Done():
		case <-l.stop:
		}
		l.mu.Lock()
		if _, ok := l.subs[channel][ch]; ok {
			delete(l.subs[channel], ch)
			if len(l.subs[channel]) == 0 {
				delete(l.subs, channel)
			}
			close(ch)
		}
		l.mu.Unlock()
		l.wake()
	}()
	if ready != nil {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("listen %s: %w", channel, ctx.Err())
		case <-l.stop:
			return nil, fmt.Errorf("listen %s: %w", channel, errClosed)
		}
	}
	return ch, nil
}

func (l *pgListener) wake() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// close stops the listener and closes every subscriber's channel.
func (l *pgListener) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	for _, subs := range l.subs {
		for ch := range subs {
			close(ch)
		}
	}
	l.subs = nil
	l.mu.Unlock()
}

// diff says which channels the connection must LISTEN to and UNLISTEN
// from to match the subscribers now. Channels to leave stop counting as
// listened at once, so a subscriber arriving meanwhile waits for its
// LISTEN rather than trusting one about to be undone.
func (l *pgListener) diff(listening map[string]bool) (listen, unlisten []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.subs {
		if !listening[c] {
			listen = append(listen, c)
		}
	}
	for c := range listening {
		if l.subs[c] == nil {
			unlisten = append(unlisten, c)
			delete(l.listened, c)
		}
	}
	return listen, unlisten
}

// listenedTo records that the connection LISTENs to c and releases the
// subscribers waiting for it.
func (l *pgListener) listenedTo(c string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listened[c] = true
	if r := l.ready[c]; r != nil {
		close(r)
		delete(l.ready, c)
	}
}

// disconnected forgets what the broken connection listened to.
func (l *pgListener) disconnected() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.listened)
}

// deliver hands payload to channel's subscribers, dropping it for those
// whose buffer is full. An empty channel name means every channel.
func (l *pgListener) deliver(channel, payload string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, subs := range l.subs {
		if channel != "" && c != channel {
			continue
		}
		for ch := range subs {
			select {
			case ch <- payload:
			default:
			}
		}
	}
}

// run keeps a connection LISTENing to the subscribed channels until the
// listener closes, reconnecting with backoff when it breaks.
func (l *pgListener) run() {
	defer close(l.done)
	backoff := 100 * time.Millisecond
	for gap := false; ; gap = true {
		err := l.session(gap)
		select {
		case <-l.stop:
			return
		default:
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		select {
		case <-l.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session connects, LISTENs and delivers until the connection breaks or
// the listener stops. After a gap (every session but the first), the
// subscribers are told they may have missed notifications.
func (l *pgListener) session(gap bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := pgx.ConnectConfig(ctx, l.s.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		l.disconnected()
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = conn.Close(cctx)
	}()
	listening := map[string]bool{}
	for first := true; ; first = false {
		// LISTEN to new channels, UNLISTEN from abandoned ones.
		listen, unlisten := l.diff(listening)
		for _, c := range unlisten {
			if _, err := conn.Exec(ctx, `UNLISTEN `+pgx.Identifier{c}.Sanitize()); err != nil {
				return err
			}
			delete(listening, c)
		}
		for _, c := range listen {
			if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{c}.Sanitize()); err != nil {
				return err
			}
			listening[c] = true
			l.listenedTo(c)
		}
		if first && gap {
			l.deliver("", "")
		}
		// Wait for a notification, or for the channels to change.
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.poke:
				wcancel()
			case <-wctx.Done():
			}
		}()
		n, err := conn.WaitForNotification(wctx)
		poked := wctx.Err() != nil && ctx.Err() == nil
		wcancel()
		if err != nil {
			if poked && !conn.IsClosed() {
				continue
			}
			return err
		}
		l.deliver(n.Channel, n.Payload)
	}
}
