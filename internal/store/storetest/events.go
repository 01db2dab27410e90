package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/internal/store"
)

var eventsCases = []testCase{
	{"written_with_their_change", eventsWithChange},
	{"none_without_a_change", eventsOnlyWithChange},
	{"freeze_and_unfreeze_say_who", eventsFreeze},
	{"filters_and_pages_newest_first", eventsPaging},
	{"RecordRefused_a_command_that_changed_nothing", eventsRefused},
}

// A refused command changes nothing but is on record: its event alone,
// on the rollout it named.
func eventsRefused(e *env) {
	rr := e.inRollout("a1", "1.0.0", "qa", "prod")
	e.must(e.s.RecordRefused(e.ctx, rr.ID, store.Event{Kind: store.CommandKind("deploy"), Stage: "prod", Actor: "dave",
		Detail: "/shipbot deploy prod (refused: needs write permission)"}))
	evs := e.events(store.EventQuery{Run: rr.ID})
	if len(evs) != 2 || evs[0].Kind != "command.deploy" || evs[0].Actor != "dave" || evs[0].Pipeline != pk || evs[0].Repo != repo ||
		evs[0].RunID != rr.ID || evs[0].Stage != "prod" {
		e.Errorf("events after a refused command = %+v; want it on record, on its rollout", evs)
	}
	if got := e.states(rr.ID); got != "[pending pending]" {
		e.Errorf("stages after a refused command = %s; want untouched", got)
	}
	if err := e.s.RecordRefused(e.ctx, "no-such-rollout", store.Event{Kind: store.CommandKind("deploy")}); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RecordRefused on no rollout = %v; want ErrNotFound", err)
	}
	if n := len(e.events(store.EventQuery{})); n != 2 {
		e.Errorf("%d events; want 2, none for a rollout that does not exist", n)
	}
}

// kinds lists the kinds of events, oldest first.
func kinds(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[len(evs)-1-i] = ev.Kind
	}
	return out
}

func (e *env) events(q store.EventQuery) []store.Event {
	e.Helper()
	evs, err := e.s.ListEvents(e.ctx, q)
	e.must(err)
	return evs
}

// Every change a merge goes through writes its event, filled in with the
// run, pipeline and repository, and the events of a run read in order.
func eventsWithChange(e *env) {
	r := e.newRun(repo, "a1", 12)
	if _, created, err := e.s.CreateRun(e.ctx, store.Run{Repo: repo, SHA: "a1", Branch: "main", Source: "pull_request"}); err != nil || created {
		e.Fatalf("second CreateRun: created %v, %v", created, err)
	}
	r.State, r.Pipeline, r.Version, r.Tag = store.RunReleased, "api", "1.0.0", "v1.0.0"
	e.must(e.s.UpdateRun(e.ctx, r))
	rel := r.Release()
	for range 2 { // a retried start records the release once
		_, _, err := e.s.StartRollout(e.ctx, r.ID, pk, rel, []byte("version: 1\n"), nil, []string{"qa", "prod"},
			store.Event{Kind: store.KindReleaseCreated, Detail: "v1.0.0"})
		e.must(err)
	}
	rr := e.rollout(r.ID)
	e.must(e.s.SetWait(e.ctx, r.ID, 0, someWait(0), store.Event{Kind: store.KindStageWaiting, Stage: "qa", Detail: someWait(0).Text()}))
	// The same wait again changes nothing, and so records nothing.
	e.must(e.s.SetWait(e.ctx, r.ID, 0, someWait(0), store.Event{Kind: store.KindStageWaiting, Stage: "qa", Detail: "again"}))
	x := e.enter(rr, 0, 1)
	x.Phase = deploying
	e.must(e.s.UpdateExecution(e.ctx, x, store.Event{Kind: store.KindStageTriggered, Stage: "qa"}))
	x.Outcome = succeeded
	e.must(e.s.FinishExecution(e.ctx, x, passed,
		store.Event{Kind: store.KindStageSucceeded, Stage: "qa"}, store.Event{Kind: store.KindStagePassed, Stage: "qa"}))
	e.must(e.s.SetStageState(e.ctx, r.ID, 1, skipped, store.Event{Kind: store.KindStageSkipped, Stage: "prod", Detail: "label no-deploy-to-prod"}))
	e.must(e.s.ReopenStage(e.ctx, r.ID, 1, []stageState{skipped}, "maintainer", "",
		store.Event{Kind: store.CommandKind("deploy"), Stage: "prod", Actor: "maintainer", Detail: "/shipbot deploy prod"}))

	evs := e.events(store.EventQuery{Run: r.ID})
	want := []string{store.KindMergeRecorded, store.KindReleaseCreated, store.KindStageWaiting, store.KindStageEntered,
		store.KindStageTriggered, store.KindStageSucceeded, store.KindStagePassed, store.KindStageSkipped, "command.deploy"}
	if got := kinds(evs); !slices.Equal(got, want) {
		e.Fatalf("events of the run, oldest first:\n got %v\nwant %v", got, want)
	}
	for _, ev := range evs {
		if ev.Repo != repo || ev.RunID != r.ID || ev.MergeID != r.ID || !recent(ev.At) {
			e.Errorf("%s: repo %q run %q merge %q at %v; want the run's, now", ev.Kind, ev.Repo, ev.RunID, ev.MergeID, ev.At)
		}
		if wantPipe := pk; ev.Kind == store.KindMergeRecorded {
			if ev.Pipeline != "" {
				e.Errorf("merge.recorded has pipeline %q; a merge's own event has none", ev.Pipeline)
			}
		} else if ev.Pipeline != wantPipe {
			e.Errorf("%s has pipeline %q; want %q", ev.Kind, ev.Pipeline, wantPipe)
		}
	}
	cmd := evs[0]
	if cmd.Actor != "maintainer" || cmd.Stage != "prod" || cmd.Detail != "/shipbot deploy prod" {
		e.Errorf("command event = %+v; want the maintainer's /shipbot deploy prod at prod", cmd)
	}
	if entered := evs[5]; entered.Stage != "qa" || entered.Detail != "v1.0.0" {
		e.Errorf("stage.entered = %+v; want qa, v1.0.0", entered)
	}
	if rec := evs[len(evs)-1]; rec.Detail == "" || !containsAll(rec.Detail, "#12", "a1") {
		e.Errorf("merge.recorded detail %q; want the pull request and commit", rec.Detail)
	}
	// A refusal carries its reasons.
	ref := e.newRun(repo, "b1", 13)
	ref.State = store.RunRefused
	e.must(e.s.UpdateRun(e.ctx, ref, store.Event{Kind: store.KindMergeRefused, Detail: "1 approval is required"}))
	if got := e.events(store.EventQuery{Run: ref.ID}); len(got) != 2 || got[0].Kind != store.KindMergeRefused || got[0].Detail != "1 approval is required" {
		e.Errorf("events of a refused merge = %+v; want merge.refused with the reason last", got)
	}
}

// A change that does not happen (a command on a stage that moved, an
// execution already finished) leaves no event: event and change commit
// together or not at all.
func eventsOnlyWithChange(e *env) {
	rr := e.inRollout("a1", "1.0.0", "qa", "prod")
	before := len(e.events(store.EventQuery{Run: rr.ID}))
	err := e.s.ReopenStage(e.ctx, rr.ID, 1, []stageState{skipped}, "mallory", "",
		store.Event{Kind: store.CommandKind("deploy"), Stage: "prod", Actor: "mallory"})
	if !errors.Is(err, store.ErrStateChanged) {
		e.Fatalf("ReopenStage of a pending stage = %v; want ErrStateChanged", err)
	}
	if err := e.s.ApproveStage(e.ctx, rr.ID, 5, "mallory", store.Event{Kind: store.CommandKind("approve"), Actor: "mallory"}); !errors.Is(err, store.ErrStateChanged) {
		e.Fatalf("ApproveStage of no stage = %v; want ErrStateChanged", err)
	}
	x := e.enter(rr, 0, 1)
	e.finish(x, succeeded, passed)
	x.Outcome = failure
	if err := e.s.FinishExecution(e.ctx, x, failed, store.Event{Kind: store.KindStageFailed, Stage: "qa"}); !errors.Is(err, store.ErrFinished) {
		e.Fatalf("second FinishExecution = %v; want ErrFinished", err)
	}
	if err := e.s.FinishAndEnter(e.ctx, x, []store.Execution{rollbackOf(x, "0.9.0")}, store.Event{Kind: store.KindStageFailed, Stage: "qa"}); !errors.Is(err, store.ErrFinished) {
		e.Fatalf("FinishAndEnter of a finished execution = %v; want ErrFinished", err)
	}
	got := kinds(e.events(store.EventQuery{Run: rr.ID}))
	if want := []string{store.KindStageEntered}; !slices.Equal(got[before:], want) {
		e.Errorf("events after refused changes = %v; want only %v", got[before:], want)
	}
}

func eventsFreeze(e *env) {
	e.must(e.s.Freeze(e.ctx, pk, "incident 42", "alice"))
	if was, err := e.s.Unfreeze(e.ctx, "acme/web:web", "bob"); err != nil || was {
		e.Fatalf("Unfreeze of a pipeline not frozen = %v, %v", was, err)
	}
	if _, err := e.s.Unfreeze(e.ctx, pk, "bob"); err != nil {
		e.Fatal(err)
	}
	evs := e.events(store.EventQuery{})
	if len(evs) != 2 {
		e.Fatalf("events = %+v; want the freeze and the unfreeze only", evs)
	}
	un, fr := evs[0], evs[1]
	if fr.Kind != store.KindPipelineFrozen || fr.Actor != "alice" || fr.Detail != "incident 42" || fr.Pipeline != pk || fr.Repo != repo {
		e.Errorf("freeze event = %+v", fr)
	}
	if un.Kind != store.KindPipelineUnfrozen || un.Actor != "bob" || un.Pipeline != pk {
		e.Errorf("unfreeze event = %+v", un)
	}
}

// Pages go newest first, each "before" the last id of the one before,
// and the filters keep a pipeline's events (with its repository's merges)
// or a run's.
func eventsPaging(e *env) {
	var runs []string
	for i := range 3 {
		rr := e.inRollout(fmt.Sprint("a", i), fmt.Sprintf("1.%d.0", i), "qa")
		e.enter(rr, 0, 1)
		runs = append(runs, rr.ID)
	}
	other := e.released("acme/web", "w1", 0, "0.1.0")
	e.start(other, "acme/web:web", "prod")
	e.must(e.s.Freeze(e.ctx, "acme/web:web", "", "carol"))

	all := e.events(store.EventQuery{Limit: 500})
	if len(all) != 3*2+2 {
		e.Fatalf("%d events: %v; want 8", len(all), kinds(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			e.Fatalf("events not newest first: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	var paged []int64
	q := store.EventQuery{Limit: 3}
	for {
		page := e.events(q)
		for _, ev := range page {
			paged = append(paged, ev.ID)
		}
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].ID
	}
	var ids []int64
	for _, ev := range all {
		ids = append(ids, ev.ID)
	}
	if !slices.Equal(paged, ids) {
		e.Errorf("pages of 3 gave %v; want %v", paged, ids)
	}
	for _, ev := range e.events(store.EventQuery{Pipeline: pk}) {
		if ev.Repo != repo || ev.Pipeline != pk && ev.Pipeline != "" {
			e.Errorf("pipeline filter kept %+v", ev)
		}
	}
	if n := len(e.events(store.EventQuery{Pipeline: pk})); n != 6 {
		e.Errorf("pipeline %s has %d events; want 6 (3 merges, 3 entries)", pk, n)
	}
	if got := kinds(e.events(store.EventQuery{Pipeline: "acme/web:web"})); !slices.Equal(got, []string{store.KindMergeRecorded, store.KindPipelineFrozen}) {
		e.Errorf("events of acme/web:web = %v", got)
	}
	if got := kinds(e.events(store.EventQuery{Run: runs[1]})); !slices.Equal(got, []string{store.KindMergeRecorded, store.KindStageEntered}) {
		e.Errorf("events of one run = %v", got)
	}
	mark, err := e.s.LatestEvent(e.ctx)
	e.must(err)
	e.must(e.s.Freeze(e.ctx, pk, "", "dave"))
	if again, err := e.s.LatestEvent(e.ctx); err != nil || again == mark {
		e.Errorf("LatestEvent after an event = %d, %v; want a change from %d", again, err, mark)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
