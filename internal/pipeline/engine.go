// Package pipeline is the rollout engine's imperative shell: it loads each
// pipeline's persisted state, asks the pure scheduler (internal/schedule)
// what may happen now, carries the actions out (one transaction each), and
// moves stage executions along: trigger, wait for the outcome (callback,
// polling where the target's driver can ask, or timeout), bake while
// watching alarms, roll back.
//
// Everything it knows is in the database, so a restarted process resumes
// every unfinished rollout where it stood: a trigger that was being sent is
// sent again with the same attempt, idempotency key and callback URL.
package pipeline

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/internal/alarm"
	"github.com/shipbot/shipbot/internal/config"
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/lease"
	"github.com/shipbot/shipbot/internal/rollout"
	"github.com/shipbot/shipbot/internal/schedule"
	"github.com/shipbot/shipbot/internal/store"
)

// Outcomes of an execution, as the rollout model names them.
const (
	Succeeded = rollout.Succeeded
	Failed    = rollout.Failed
)

// Event is something the engine did, for narration (the demo) and tests.
type Event struct {
	RunID   string
	Repo    string
	Version string
	Stage   string
	// What: entered, triggered, succeeded, baking, passed, failed, skipped,
	// superseded, rolling-back, rolled-back, waiting, done.
	What   string
	Detail string
}

// Engine runs rollouts.
type Engine struct {
	Store   Store
	Targets config.Targets
	// Trigger reaches the targets through their kinds' drivers: it sends
	// triggers and asks those that can how a deploy went.
	Trigger  *deploy.Triggerer
	Alarms   *alarm.Checker
	Reporter Reporter
	// PublicURL is the service's external URL; callback URLs hang off it.
	PublicURL string
	// TokenKey derives callback tokens: the token of an execution is an
	// HMAC of its id, so a re-sent trigger carries the same callback URL
	// while the database keeps only the token's hash.
	TokenKey []byte
	Owner    string
	Log      *slog.Logger
	Now      func() time.Time
	// Tick is how often the engine looks without a wake-up; default 1s.
	Tick time.Duration
	// AlarmEvery is how often a baking or blocked stage's alarms are read;
	// default 15s.
	AlarmEvery time.Duration
	// PollEvery is how often a deploy whose target's driver polls (a
	// Spinnaker execution, a dispatched workflow run) is asked about;
	// default 10s.
	PollEvery time.Duration
	// Observe, when set, is told of every event.
	Observe func(Event)
	// HandOff, when set and true for a target, passes a stage as soon as its
	// trigger is accepted (Action mode on a runner that cannot learn the
	// outcome).
	HandOff func(config.Target) bool
	// DeployedBefore, when set, is asked before a stage's trigger is sent
	// whether the stage already runs the version, deployed by another
	// process (Action mode: an earlier job or a re-run, whose state this
	// job's fresh database does not have). It says how it knows.
	DeployedBefore func(ctx context.Context, repo string, ex store.Execution) (how string, deployed bool, err error)
	// NoApprovals, when set, says why nobody can approve a run here
	// (Action mode: a job takes no /shipbot commands). A run that would
	// wait for a stage's approval fails that stage at once, for this
	// reason, instead of waiting for a command that cannot come.
	NoApprovals string
	// Peers, when set, carries wake-ups and lease hand-overs between the
	// replicas that share the database (PostgreSQL's LISTEN/NOTIFY): a
	// callback or a command that lands on one replica reaches the replica
	// driving that pipeline at once, not at its next tick. A store with one
	// process per database (SQLite) needs none.
	Peers store.Notifier

	once sync.Once
	wake chan struct{}
	// publish asks Run's publisher to tell the other replicas to look.
	publish chan struct{}
	mu      sync.Mutex
	alarmAt map[string]alarmReading  // alarm name → last reading
	configs map[[32]byte]config.Repo // parsed configurations by content
	// leases holds each pipeline's lease and in-process lock while the
	// pipeline is stepped or a command changes it; while Run runs, it
	// keeps the leases it takes.
	leases *lease.Keeper
	// finishing holds the done runs being shown and taken out (see
	// finish); bg waits for them.
	finishing map[string]bool
	bg        sync.WaitGroup
	// done is closed by Wait: a final report that failed then gives up
	// its wait to try again.
	done     chan struct{}
	doneOnce sync.Once
}

// Store is what the engine keeps in the database: the rollouts it drives,
// the changes commands make to them, the pipelines' leases, and the API
// calls a rollout costs.
type Store interface {
	store.Rollouts
	store.Commands
	store.Leases
	AddAPICalls(ctx context.Context, runID string, n int) error
}

// Reporter shows a run's rollout on GitHub; the engine calls it after the
// run changed. It must not block for long.
type Reporter interface {
	RolloutChanged(ctx context.Context, runID string)
}

// FinalReporter is a Reporter that can show a run's state at once. The
// engine then takes a done run out of its pipeline only after that write:
// a crash in between leaves the run done but still in its pipeline, and the
// next process shows it again, so a pull request never keeps showing a
// rollout in progress that ended.
type FinalReporter interface {
	Reporter
	RolloutFinal(ctx context.Context, runID string) error
}

type alarmReading struct {
	status alarm.Status
	at     time.Time
}

func (e *Engine) init() {
	e.once.Do(func() {
		e.wake = make(chan struct{}, 1)
		e.publish = make(chan struct{}, 1)
		e.alarmAt = map[string]alarmReading{}
		e.configs = map[[32]byte]config.Repo{}
		e.leases = &lease.Keeper{Store: e.Store, Owner: e.Owner, Log: e.Log}
		e.finishing = map[string]bool{}
		e.done = make(chan struct{})
		if e.Now == nil {
			e.Now = time.Now
		}
		if e.Tick == 0 {
			e.Tick = time.Second
		}
		if e.AlarmEvery == 0 {
			e.AlarmEvery = 15 * time.Second
		}
		if e.PollEvery == 0 {
			e.PollEvery = 10 * time.Second
		}
	})
}

// Wake makes the engine look now, and the other replicas' engines too
// when there are Peers; it never blocks.
func (e *Engine) Wake() {
	e.init()
	e.wakeLocal()
	if e.Peers != nil {
		select {
		case e.publish <- struct{}{}:
		default: // a notification is on its way already
		}
	}
}

// Woken signals a Wake, for a caller that steps the engine itself (the
// Action's job) instead of running it: a callback's outcome or a command
// is acted on at once, not at the caller's next look.
func (e *Engine) Woken() <-chan struct{} {
	e.init()
	return e.wake
}

func (e *Engine) wakeLocal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Channels the replicas' engines talk on.
const (
	wakeChannel  = "shipbot_wake"  // payload: the waking replica's owner name
	yieldChannel = "shipbot_yield" // payload: a yieldRequest
)

// yieldRequest asks the replica that keeps a lease to hand it over.
type yieldRequest struct {
	Lease string `json:"lease"`
	By    string `json:"by"` // the asking replica's owner name
}

// Run steps the engine until ctx ends. While it runs, the engine keeps the
// pipeline leases it takes (renewing them as they age) instead of taking
// and giving each up on every step, two writes each, which a busy pipeline
// paid for every callback; it gives them up when it returns, so a replica
// stopped with SIGTERM hands its pipelines over at once.
func (e *Engine) Run(ctx context.Context) {
	e.init()
	e.leases.Keep()
	defer e.handOver(context.WithoutCancel(ctx))
	defer e.bg.Wait()
	if e.Peers != nil {
		var peers sync.WaitGroup
		defer peers.Wait()
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		e.listen(pctx, &peers)
	}
	// The process before this one may have died before it showed its last
	// changes on GitHub: show every run still in a rollout once.
	e.reportActive(ctx)
	t := time.NewTicker(e.Tick)
	defer t.Stop()
	for {
		e.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-t.C:
		}
	}
}

// Wait waits for what the engine does in the background (a done run's
// final report, then its exit from the pipeline, which reports the run
// once more), for a caller that only Steps the engine (a job) and is about
// to flush its reporter and stop: without it, that last report could be
// scheduled after the flush and run after the job ended. Run waits for
// the same itself. A final report that failed does not wait to try again:
// the engine is done with.
func (e *Engine) Wait() {
	e.init()
	e.doneOnce.Do(func() { close(e.done) })
	e.bg.Wait()
}

// handOver gives up the leases the engine kept and wakes the other
// replicas, so that one of them drives the pipelines now rather than at
// its next tick (a second by default, however long under load: a handover
// of a busy pipeline once took 2.1 s).
func (e *Engine) handOver(ctx context.Context) {
	if e.leases.ReleaseAll(ctx) == 0 || e.Peers == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := e.Peers.Notify(ctx, wakeChannel, e.Owner); err != nil {
		e.Log.Warn("wake the other replicas after giving up leases; they take over at their next tick", "err", err)
	}
}

// listen wires the engine to its peers until ctx ends: their wake-ups wake
// it, their requests for a lease it keeps make it yield the lease, and its
// own wake-ups are published to them (coalesced: Wakes while a
// notification is being sent make one more).
func (e *Engine) listen(ctx context.Context, wg *sync.WaitGroup) {
	wakes, err := e.Peers.Listen(ctx, wakeChannel)
	if err != nil {
		e.Log.Error("listen for other replicas' wake-ups; relying on the tick", "err", err)
	}
	yields, err := e.Peers.Listen(ctx, yieldChannel)
	if err != nil {
		e.Log.Error("listen for other replicas' lease requests; their commands wait for lease expiry", "err", err)
	}
	wg.Go(func() {
		for wakes != nil || yields != nil {
			select {
			case by, ok := <-wakes:
				if !ok {
					wakes = nil
					continue
				}
				// Its own wake-ups woke it already ("" after a lost
				// connection: anything may have been missed).
				if by != e.Owner {
					e.wakeLocal()
				}
			case payload, ok := <-yields:
				if !ok {
					yields = nil
					continue
				}
				// "" after a lost connection: nothing to hand over. Its own
				// requests reach the asker too: it must not yield to itself.
				var req yieldRequest
				if payload != "" && json.Unmarshal([]byte(payload), &req) == nil && req.By != e.Owner {
					e.leases.Yield(ctx, req.Lease)
				}
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.publish:
			}
			if err := e.Peers.Notify(ctx, wakeChannel, e.Owner); err != nil && ctx.Err() == nil {
				e.Log.Warn("wake the other replicas; they look at their next tick", "err", err)
			}
		}
	})
}

// Step does everything that can be done now, pipeline by pipeline.
func (e *Engine) Step(ctx context.Context) {
	e.init()
	keys, err := e.Store.PipelinesWithRollouts(ctx)
	if err != nil {
		if ctx.Err() == nil { // not just shutting down
			e.Log.Error("list pipelines", "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		// Pipelines are independent: one slow target must not hold up
		// another team's rollout.
		go func() {
			defer wg.Done()
			if err := e.stepPipeline(ctx, key); err != nil && ctx.Err() == nil {
				e.Log.Error("step pipeline", "pipeline", key, "err", err)
			}
		}()
	}
	wg.Wait()
}

// pipelineLease names the lease of a pipeline's rollout.
func pipelineLease(key string) string { return "pipeline:" + key }

func (e *Engine) stepPipeline(ctx context.Context, key string) error {
	release, held, err := e.leases.Hold(ctx, pipelineLease(key))
	if err != nil || !held {
		return err // another replica drives this pipeline
	}
	defer release()
	// Decide and act until nothing more can happen now. A decision
	// already carries its own consequences (schedule.Decide takes a skip at
	// one stage on to the next in the same pass), so only what can change
	// the next decision calls for another pass: an execution that
	// concluded, a run that a skip or supersede finished (it leaves the
	// pipeline on the next pass), a stage failed here. A pass that only
	// entered and triggered stages is the last: a third of the passes of a
	// 200-merge burst, each of which loads every active rollout.
	for range 16 {
		runs := map[string]*pipelineRun{}
		again, err := e.decide(ctx, key, runs)
		if err != nil {
			return err
		}
		settled, err := e.progress(ctx, key, runs)
		if err != nil {
			return err
		}
		if !again && !settled {
			return nil
		}
	}
	return nil
}

// pipelineRun is a run as the engine works with it.
type pipelineRun struct {
	store.RolloutRun
	cfg config.Repo
}

// pipe is the run's pipeline in its configuration: the one its rollout
// names, else the first (the single-pipeline form has only one).
func (r *pipelineRun) pipe() config.Pipeline {
	if p, ok := r.cfg.Pipeline(r.Pipeline); ok {
		return p
	}
	return r.cfg.Pipelines[0]
}

// shape is a pipeline as its newest run's configuration says it is now:
// its stages, and how labels and commands name them.
type shape struct {
	cfg config.Repo
	config.Pipeline
}

func shapeOf(r *pipelineRun) shape { return shape{cfg: r.cfg, Pipeline: r.pipe()} }

// skipped reports whether labels skip stage s.
func (sh shape) skipped(labels []string, s config.Stage) bool {
	for _, l := range sh.cfg.SkipLabels(sh.Pipeline, s) {
		if hasLabel(labels, l) {
			return true
		}
	}
	return false
}

func (e *Engine) load(ctx context.Context, key string) ([]pipelineRun, error) {
	rrs, err := e.Store.LoadRollout(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]pipelineRun, 0, len(rrs))
	for _, rr := range rrs {
		cfg, err := e.parseConfig(rr.Repo, rr.Config)
		if err != nil {
			// It parsed when the run was released; a failure now means the
			// stored copy is damaged.
			return nil, fmt.Errorf("config of run %s: %w", rr.ID, err)
		}
		out = append(out, pipelineRun{RolloutRun: rr, cfg: cfg})
	}
	return out, nil
}

// configKey is the parse cache's key of a repository's configuration.
func configKey(repo string, data []byte) [32]byte {
	return sha256.Sum256(append([]byte(repo+"\x00"), data...))
}

// remember puts a parse into the cache.
func (e *Engine) remember(repo string, data []byte, cfg config.Repo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.configs) >= 256 {
		clear(e.configs) // bounded: configurations change rarely
	}
	e.configs[configKey(repo, data)] = cfg
}

// parseConfig parses a run's stored configuration. Runs of a pipeline
// mostly share one configuration, and every pass reads every run's: parse
// each distinct one once. The result is shared; callers must not modify it.
func (e *Engine) parseConfig(repo string, data []byte) (config.Repo, error) {
	e.mu.Lock()
	cfg, ok := e.configs[configKey(repo, data)]
	e.mu.Unlock()
	if ok {
		return cfg, nil
	}
	cfg, err := config.ParseRepo(config.RepoFile, data, repoName(repo))
	if err != nil {
		return config.Repo{}, err
	}
	e.remember(repo, data, cfg)
	return cfg, nil
}

// decide runs the scheduler over the pipeline and applies its actions. It
// adds the runs it loaded to loaded, by id, for progress, and reports
// whether what it did calls for deciding again (see stepPipeline).
func (e *Engine) decide(ctx context.Context, key string, loaded map[string]*pipelineRun) (bool, error) {
	runs, err := e.load(ctx, key)
	if err != nil || len(runs) == 0 {
		return false, err
	}
	// The newest run's stages are the pipeline's: configuration rides with
	// the code, and the newest code says what the pipeline is now.
	sh := shapeOf(&runs[len(runs)-1])
	stages := sh.Stages
	st := schedule.State{Stages: make([]schedule.Stage, len(stages))}
	if st.Mode, err = schedule.ParseMode(sh.Concurrency); err != nil {
		return false, err
	}
	reason, frozen, err := e.Store.Frozen(ctx, key)
	if err != nil {
		return false, err
	}
	st.Frozen = frozen
	now := e.Now()
	byID := map[string]*pipelineRun{}
	for i := range runs {
		r := &runs[i]
		byID[r.ID] = r
		loaded[r.ID] = r
		st.Runs = append(st.Runs, scheduleRun(r, sh))
	}
	for k, s := range stages {
		st.Stages[k].NeedsApproval = s.Approval
		if s.Window != nil && !s.Window.Contains(now) {
			st.Stages[k].WindowClosed, st.Stages[k].WindowOpens = true, s.Window.NextOpen(now)
		}
		if len(s.Alarms) > 0 && someoneWaits(st, k) {
			st.Stages[k].Alarms = e.firing(ctx, s.Alarms)
		}
	}
	d, err := schedule.Decide(st)
	if err != nil {
		return false, fmt.Errorf("schedule %s: %w", key, err)
	}
	again := false
	for _, a := range d.Actions {
		r, s := byID[a.Run], stages[a.Stage]
		switch a.Kind {
		case schedule.Skip:
			if err := e.Store.SetStageState(ctx, r.ID, a.Stage, schedule.Skipped,
				stageEvent(store.KindStageSkipped, s.Name, "label "+s.SkipLabelName())); err != nil {
				return again, err
			}
			e.emit(r, s.Name, "skipped", "label "+s.SkipLabelName())
			again = true // the run may be done: it leaves on the next pass
		case schedule.Supersede:
			if err := e.Store.SetStageStatesFrom(ctx, r.ID, a.Stage, schedule.Superseded,
				stageEvent(store.KindStageSuperseded, s.Name, "a newer version takes the stage")); err != nil {
				return again, err
			}
			e.emit(r, s.Name, "superseded", "a newer version takes the stage")
			again = true
		case schedule.Enter:
			// The decision may rest on alarm readings up to AlarmEvery old
			// (taken while the run waited for something else). Read them
			// again unless this pass just did, and if one fires now, decide
			// again instead of entering (internal/schedule's contract): the
			// actions applied so far are a valid prefix.
			forced, _ := stageRow(r, s.Name)
			if len(s.Alarms) > 0 && forced.ForceBy == "" && e.firesNow(ctx, s.Alarms, now) {
				return true, nil
			}
			if forced.ForceBy != "" {
				e.emit(r, s.Name, "forced", "past window and alarms by @"+forced.ForceBy)
			}
			if err := e.enter(ctx, r, a.Stage, s, false, r.Version, r.Tag); err != nil {
				return again, err
			}
		}
		e.reported(ctx, r.ID)
	}
	for _, w := range d.Waits {
		r := byID[w.Run]
		if e.NoApprovals != "" && waitsForApproval(w) {
			name := stages[w.Stage].Name
			if err := e.Store.RejectStage(ctx, r.ID, w.Stage, "", e.NoApprovals,
				stageEvent(store.KindStageFailed, name, e.NoApprovals)); err != nil {
				return again, err
			}
			e.emit(r, name, "failed", e.NoApprovals)
			e.reported(ctx, r.ID)
			again = true
			continue
		}
		wait := waitOf(w, byID, sh, reason)
		if cur, _ := stageRow(r, stages[w.Stage].Name); !cur.Wait.Equal(wait) {
			var evs []store.Event
			if !wait.None() {
				evs = append(evs, stageEvent(store.KindStageWaiting, stages[w.Stage].Name, wait.Text()))
			}
			if err := e.Store.SetWait(ctx, r.ID, w.Stage, wait, evs...); err != nil {
				return again, err
			}
			e.emit(r, stages[w.Stage].Name, "waiting", wait.Text())
			e.reported(ctx, r.ID)
		}
	}
	// Runs that are done leave the pipeline, at once even while other runs
	// move (in a busy pipeline something always does): the actions above
	// never touch a run that was done before them, and every pass loads
	// only the runs still in the pipeline.
	for i, sr := range st.Runs {
		if sr.Done() {
			if err := e.finish(ctx, &runs[i]); err != nil {
				return again, err
			}
		}
	}
	return again, nil
}

// finalRetry is how long a run whose final state GitHub did not take waits
// before the next try.
const finalRetry = 10 * time.Second

// finish takes a done run out of its pipeline. With a FinalReporter, its
// final state is shown first, beside the pipeline's pass: a done run holds
// no unit and no run behind it, so that write holds up nobody.
func (e *Engine) finish(ctx context.Context, r *pipelineRun) error {
	fr, ok := e.Reporter.(FinalReporter)
	if !ok {
		return e.finished(ctx, r)
	}
	e.mu.Lock()
	busy := e.finishing[r.ID]
	e.finishing[r.ID] = true
	e.mu.Unlock()
	if busy {
		return nil
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.finishing, r.ID)
			e.mu.Unlock()
		}()
		if err := fr.RolloutFinal(ctx, r.ID); err != nil {
			if ctx.Err() != nil {
				return // shutting down: the next process shows it and finishes it
			}
			// The pull request's final state is always written: the run
			// stays, holding nobody, and a pass after finalRetry (still
			// marked finishing until then) tries again.
			e.Log.Warn("show final rollout state; trying again", "run", r.ID, "in", finalRetry, "err", err)
			select {
			case <-time.After(finalRetry):
			case <-ctx.Done():
			case <-e.done:
			}
			return
		}
		if err := e.finished(ctx, r); err != nil && ctx.Err() == nil {
			e.Log.Error("finish rollout", "run", r.ID, "err", err)
		}
	}()
	return nil
}

func (e *Engine) finished(ctx context.Context, r *pipelineRun) error {
	if err := e.Store.FinishRollout(ctx, r.ID); err != nil {
		return err
	}
	e.emit(r, "", "done", "")
	e.reported(ctx, r.ID)
	return nil
}

// reportActive asks the reporter to show every run still in a rollout.
func (e *Engine) reportActive(ctx context.Context) {
	if e.Reporter == nil {
		return
	}
	keys, err := e.Store.PipelinesWithRollouts(ctx)
	if err != nil {
		e.Log.Warn("list pipelines", "err", err)
		return
	}
	for _, key := range keys {
		runs, err := e.Store.LoadRollout(ctx, key)
		if err != nil {
			e.Log.Warn("load rollout", "pipeline", key, "err", err)
			continue
		}
		for _, r := range runs {
			e.reported(ctx, r.ID)
		}
	}
}

// scheduleRun is how the scheduler sees r in the pipeline sh.
func scheduleRun(r *pipelineRun, sh shape) schedule.Run {
	sr := schedule.Run{ID: r.ID, Order: r.Order, Stages: make([]schedule.StageState, len(sh.Stages))}
	for k, s := range sh.Stages {
		state, has := stageState(r, s.Name)
		if !has {
			// A stage the run's own configuration does not have: nothing
			// of it to deploy there.
			state = schedule.Skipped
		}
		sr.Stages[k] = state
		row, _ := stageRow(r, s.Name)
		// A person's /shipbot deploy outweighs the label.
		if sh.skipped(r.Labels, s) && row.DeployBy == "" {
			sr.Skip = sr.Skip.With(k)
		}
		if row.ForceBy != "" {
			sr.Force = sr.Force.With(k)
		}
		if row.ApprovedBy != "" {
			sr.Approved = sr.Approved.With(k)
		}
	}
	return sr
}

func someoneWaits(st schedule.State, k int) bool {
	for _, r := range st.Runs {
		if r.Current() == k && k < len(r.Stages) && r.Stages[k] == schedule.Pending && !r.Stopped() {
			return true
		}
	}
	return false
}

// firing reads the alarms (each at most every AlarmEvery) and returns those
// that fire.
func (e *Engine) firing(ctx context.Context, names []string) []string {
	var out []string
	for _, name := range names {
		if e.readAlarm(ctx, name).Firing {
			out = append(out, name)
		}
	}
	return out
}

// firesNow reports whether any of the alarms fires, reading each again
// unless it was read at or after since.
func (e *Engine) firesNow(ctx context.Context, names []string, since time.Time) bool {
	fires := false
	for _, name := range names {
		if e.readAlarmSince(ctx, name, since).Firing {
			fires = true
		}
	}
	return fires
}

// readAlarm reads an alarm, reusing a reading younger than AlarmEvery.
func (e *Engine) readAlarm(ctx context.Context, name string) alarm.Status {
	return e.readAlarmSince(ctx, name, e.Now().Add(-e.AlarmEvery))
}

// readAlarmSince reads an alarm, reusing a reading taken at or after since.
func (e *Engine) readAlarmSince(ctx context.Context, name string, since time.Time) alarm.Status {
	e.mu.Lock()
	last, ok := e.alarmAt[name]
	e.mu.Unlock()
	if ok && !last.at.Before(since) {
		return last.status
	}
	// A reading is as old as the moment it was asked for: an answer that
	// arrives after the bake's end tells nothing about an alarm that
	// fired while the request was in flight.
	at := e.Now()
	a, defined := e.Targets.Alarms[name]
	var st alarm.Status
	if !defined {
		// Unknown alarms fail safe, like unreachable ones.
		st = alarm.Status{Firing: true, Unknown: true, Reason: fmt.Sprintf("alarm %s is not defined in the targets file: counts as firing", name)}
	} else {
		st = e.Alarms.Firing(ctx, a)
	}
	e.mu.Lock()
	e.alarmAt[name] = alarmReading{status: st, at: at}
	e.mu.Unlock()
	return st
}

func stageRow(r *pipelineRun, name string) (store.StageRow, bool) {
	for _, s := range r.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return store.StageRow{}, false
}

func stageState(r *pipelineRun, name string) (schedule.StageState, bool) {
	row, ok := stageRow(r, name)
	return row.State, ok
}

func hasLabel(labels []string, name string) bool {
	for _, l := range labels {
		if strings.EqualFold(l, name) {
			return true
		}
	}
	return false
}

// waitsForApproval reports whether w holds its run for a stage's approval
// (among other reasons or alone).
func waitsForApproval(w schedule.Wait) bool {
	return slices.ContainsFunc(w.Reasons, func(r schedule.Reason) bool { return r.Kind == schedule.Approval })
}

// waitOf is the wait the PR shows for w: its main reason, with run ids
// resolved to versions.
func waitOf(w schedule.Wait, byID map[string]*pipelineRun, sh shape, freezeReason string) rollout.Wait {
	if len(w.Reasons) == 0 {
		return rollout.Wait{}
	}
	r := w.Reasons[0]
	out := rollout.Wait{Kind: r.Kind, Alarm: r.Alarm, Until: r.Until}
	switch r.Kind {
	case schedule.Behind, schedule.Busy, schedule.NewerWaiting:
		out.Tag = r.Run
		if o, ok := byID[r.Run]; ok {
			out.Tag = o.Tag
		}
		if r.Kind == schedule.Busy {
			out.Stage = sh.Stages[w.Stage].Name
		}
	case schedule.Frozen:
		out.Reason = freezeReason
	case schedule.Approval:
		out.Approve = sh.cfg.StageRef(sh.Pipeline, sh.Stages[w.Stage])
	}
	return out
}

// enter starts an execution of stage idx: the stage becomes active and the
// trigger goes out on the next progress pass.
func (e *Engine) enter(ctx context.Context, r *pipelineRun, idx int, s config.Stage, rollback bool, version, tag string) error {
	execs, err := e.newExecutions(ctx, r, idx, s, rollback, version, tag)
	if err != nil {
		return err
	}
	if err := e.Store.EnterStage(ctx, execs...); err != nil {
		return err
	}
	e.emit(r, s.Name, "entered", tag)
	return nil
}

// newExecutions is the next attempt of stage idx, not yet stored: one
// execution, or one per target of a wave, all triggered at once.
func (e *Engine) newExecutions(ctx context.Context, r *pipelineRun, idx int, s config.Stage, rollback bool, version, tag string) ([]store.Execution, error) {
	attempt, err := e.Store.NextAttempt(ctx, r.ID, idx)
	if err != nil {
		return nil, err
	}
	targets := []string{""}
	if s.Wave() {
		targets = s.Targets
	}
	out := make([]store.Execution, len(targets))
	for i, t := range targets {
		id := store.NewID()
		out[i] = store.Execution{
			ID: id, RolloutID: r.ID, Stage: idx, StageName: s.Name, Target: t, Attempt: attempt, Rollback: rollback,
			Version: version, Tag: tag, Phase: store.PhaseTriggering, TokenHash: e.tokenHash(id),
		}
	}
	return out, nil
}

// Token is the callback token of execution id: unguessable without
// TokenKey, and the same every time it is derived.
func (e *Engine) Token(id string) string {
	m := hmac.New(sha256.New, e.TokenKey)
	m.Write([]byte("shipbot-callback:" + id))
	return hex.EncodeToString(m.Sum(nil))
}

func (e *Engine) tokenHash(id string) string { return HashToken(e.Token(id)) }

// HashToken is how a callback token is stored and looked up.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CallbackURL is where the downstream reports the outcome of execution id.
func (e *Engine) CallbackURL(id string) string {
	return strings.TrimRight(e.PublicURL, "/") + "/api/v1/callbacks/" + e.Token(id)
}

// stageEvent is the audit log's record of a stage transition the engine
// makes; the store fills in the rollout.
func stageEvent(kind, stage, detail string) store.Event {
	return store.Event{Kind: kind, Stage: stage, Detail: detail}
}

func (e *Engine) emit(r *pipelineRun, stage, what, detail string) {
	e.Log.Info("rollout", "run", r.ID, "repo", r.Repo, "version", r.Tag, "stage", stage, "event", what, "detail", detail)
	if e.Observe != nil {
		e.Observe(Event{RunID: r.ID, Repo: r.Repo, Version: r.Tag, Stage: stage, What: what, Detail: detail})
	}
}

func (e *Engine) reported(ctx context.Context, runID string) {
	if e.Reporter != nil {
		e.Reporter.RolloutChanged(ctx, runID)
	}
}

func repoName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// PipelineKey names a repository's pipeline. Pipelines are per repository:
// two repositories that both call theirs "api" do not share stage locks.
func PipelineKey(repo, pipeline string) string { return repo + ":" + pipeline }

// Start puts a released run into the rollout of one of its pipelines,
// deploying rel (the single-pipeline form's is the run's own release),
// behind every earlier version, and wakes the engine. Starting a run in a
// pipeline twice keeps its place.
func (e *Engine) Start(ctx context.Context, r store.Run, pipeline string, rel store.Release, cfg config.Repo, cfgYAML []byte, labels []string) error {
	e.init()
	// The merge parsed the configuration it released with: keep that parse
	// for the engine's passes over the run instead of parsing the bytes
	// again.
	e.remember(r.Repo, cfgYAML, cfg)
	p, ok := cfg.Pipeline(pipeline)
	if !ok {
		return fmt.Errorf("start run %s: its configuration has no pipeline %q", r.ID, pipeline)
	}
	names := make([]string, len(p.Stages))
	for i, s := range p.Stages {
		names[i] = s.Name
	}
	// The run's first rollout has the run's id.
	id, _, err := e.Store.StartRollout(ctx, r.ID, PipelineKey(r.Repo, p.Name), rel, cfgYAML, labels, names,
		store.Event{Kind: store.KindReleaseCreated, Detail: strings.TrimSpace(rel.Tag + " " + rel.URL)})
	if err != nil {
		return err
	}
	if len(names) == 0 {
		// Nothing to roll out: the merge's own report ("Released …") is
		// the whole story.
		return nil
	}
	e.reported(ctx, id)
	e.Wake()
	return nil
}
