package schedule

import "slices"

// Decide returns what may happen now in the pipeline s, and why every run
// that cannot go on waits. It does not modify s. The result depends only on
// the values in s, not on the order of s.Runs or s.Stages[k].Alarms.
func Decide(s State) (Decision, error) {
	byOrder, stopped, err := s.index()
	if err != nil {
		return Decision{}, err
	}
	d := decider{
		s:       &s,
		n:       len(s.Stages),
		runs:    make([]*Run, len(byOrder)),
		st:      make([]StageState, len(byOrder)*len(s.Stages)),
		stopped: stopped,
		waits:   make([]Wait, len(byOrder)),
		reasons: make([]Reason, 0, 2*len(byOrder)),
	}
	for p, i := range byOrder {
		d.runs[p] = &s.Runs[i]
		copy(d.st[p*d.n:], s.Runs[i].Stages)
	}
	// One pass in stage order is enough: an action at stage k changes only
	// stage k and later ones for its run, so stage k+1 sees every effect of
	// the decisions at k (a skip at k lets the run on to k+1 at once).
	for k := range d.n {
		d.stage(k)
	}
	out := Decision{Actions: d.actions}
	n := 0
	for _, w := range d.waits {
		if w.Run != "" {
			d.waits[n] = w
			n++
		}
	}
	if n > 0 {
		out.Waits = d.waits[:n:n]
	}
	return out, nil
}

// decider works on a scratch copy of the stage states, indexed by position
// in order, so that its own actions feed the later stages' decisions.
type decider struct {
	s       *State
	n       int
	runs    []*Run       // sorted by order
	st      []StageState // st[p*n+k]: run p at stage k, actions applied
	stopped []bool
	waits   []Wait
	reasons []Reason
	actions []Action
	group   []int
}

func (d *decider) at(p, k int) StageState { return d.st[p*d.n+k] }

// contender: run p could still enter stage k.
func (d *decider) contender(p, k int) bool { return !d.stopped[p] && d.at(p, k) == Pending }

// ready: run p could enter stage k as far as it itself goes.
func (d *decider) ready(p, k int) bool {
	return d.contender(p, k) && (k == 0 || d.at(p, k-1).through())
}

func (d *decider) skips(p, k int) bool { return d.runs[p].Skip.Has(k) }

func (d *decider) act(kind ActionKind, p, k int) {
	d.actions = append(d.actions, Action{Kind: kind, Run: d.runs[p].ID, Stage: k})
	switch kind {
	case Enter:
		d.st[p*d.n+k] = Active
	case Skip:
		d.st[p*d.n+k] = Skipped
	case Supersede:
		for j := k; j < d.n; j++ {
			d.st[p*d.n+j] = Superseded
		}
		d.stopped[p] = true
	}
}

// wait records why run p waits at stage k; behind, busy and newer are run
// positions or -1.
func (d *decider) wait(p, k, behind, busy int, blockers []Reason, newer int) {
	// The reasons of all waits share one backing array; each wait's slice
	// is capped so that a caller appending to it cannot clobber the next.
	start := len(d.reasons)
	rs := d.reasons
	if len(blockers) > 0 && blockers[0].Kind == Approval {
		rs = append(rs, blockers[0])
		blockers = blockers[1:]
	}
	if behind >= 0 {
		rs = append(rs, Reason{Kind: Behind, Run: d.runs[behind].ID})
	}
	if busy >= 0 {
		rs = append(rs, Reason{Kind: Busy, Run: d.runs[busy].ID})
	}
	rs = append(rs, blockers...)
	if newer >= 0 {
		rs = append(rs, Reason{Kind: NewerWaiting, Run: d.runs[newer].ID})
	}
	d.reasons = rs
	d.waits[p] = Wait{Run: d.runs[p].ID, Stage: k, Reasons: rs[start:len(rs):len(rs)]}
}

func (d *decider) blockers(k int) []Reason {
	var rs []Reason
	if d.s.Frozen {
		rs = append(rs, Reason{Kind: Frozen})
	}
	st := d.s.Stages[k]
	if st.WindowClosed {
		rs = append(rs, Reason{Kind: Window, Until: st.WindowOpens})
	}
	if len(st.Alarms) > 0 {
		alarms := slices.Clone(st.Alarms)
		slices.Sort(alarms)
		for _, a := range slices.Compact(alarms) {
			rs = append(rs, Reason{Kind: Alarm, Alarm: a})
		}
	}
	return rs
}

// blockersFor is what holds run p at stage k: its missing approval, if
// the stage needs one, then all of blockers, or for a run forced into the
// stage, only a freeze.
func (d *decider) blockersFor(p, k int, blockers []Reason) []Reason {
	rs := blockers
	if d.runs[p].Force.Has(k) && len(blockers) > 0 {
		rs = nil
		if blockers[0].Kind == Frozen { // blockers lists a freeze first
			rs = blockers[:1:1]
		}
	}
	if d.s.Stages[k].NeedsApproval && !d.runs[p].Approved.Has(k) {
		rs = append([]Reason{{Kind: Approval}}, rs...)
	}
	return rs
}

// onlyApproval reports whether rs holds a run for its approval alone.
func onlyApproval(rs []Reason) bool { return len(rs) == 1 && rs[0].Kind == Approval }

// stage decides stage k. The runs that may act are the group: the ready
// contenders ahead of the first contender that has not reached stage k yet
// (the barrier). Every earlier run of a group member is settled at k or in
// the group, so the group can be resolved among itself; everything from the
// barrier on waits behind it.
func (d *decider) stage(k int) {
	busy := -1
	for p := range d.runs {
		if d.at(p, k) == Active {
			busy = p
			break
		}
	}
	blockers := d.blockers(k)
	d.group = d.group[:0]
	barrier := len(d.runs)
	for p := range d.runs {
		if !d.contender(p, k) {
			continue
		}
		if !d.ready(p, k) {
			barrier = p
			break
		}
		d.group = append(d.group, p)
	}
	if d.s.Mode == Latest {
		busy = d.latest(k, busy, blockers)
	} else {
		busy = d.queue(k, busy, blockers)
	}
	prev := -1
	for p := barrier; p < len(d.runs); p++ {
		if !d.contender(p, k) {
			continue
		}
		if d.ready(p, k) {
			if d.skips(p, k) {
				d.wait(p, k, prev, -1, nil, -1)
			} else {
				d.wait(p, k, prev, busy, d.blockersFor(p, k, blockers), -1)
			}
		}
		prev = p
	}
}

// queue resolves the group in queue mode: members skip or enter strictly in
// order, and the first one that cannot holds everyone behind it. It returns
// the unit's holder afterwards.
func (d *decider) queue(k, busy int, blockers []Reason) int {
	prev, held := -1, false
	for _, p := range d.group {
		skip := d.skips(p, k)
		switch {
		case held && skip:
			d.wait(p, k, prev, -1, nil, -1)
		case held:
			d.wait(p, k, prev, busy, d.blockersFor(p, k, blockers), -1)
		case skip:
			d.act(Skip, p, k)
			continue
		case busy < 0 && len(d.blockersFor(p, k, blockers)) == 0:
			d.act(Enter, p, k)
			busy = p
			continue
		default:
			d.wait(p, k, -1, busy, d.blockersFor(p, k, blockers), -1)
			held = true
		}
		prev = p
	}
	return busy
}

// latest resolves the group in latest mode: when the unit is free and
// unblocked, the newest member that deploys here enters and the older ones
// that would deploy here are superseded; members that skip the stage skip.
// The actions go out in run order, so each one is allowed after the ones
// before it (a supersede before the entry it makes room for). It returns the
// unit's holder afterwards.
func (d *decider) latest(k, busy int, blockers []Reason) int {
	newest := -1
	for _, p := range d.group {
		if !d.skips(p, k) {
			newest = p
		}
	}
	if newest >= 0 && busy < 0 && onlyApproval(d.blockersFor(newest, k, blockers)) {
		// The stage is free but for the newest run's approval: the older
		// ones would lose to it the moment it is approved, so nobody is
		// asked to approve them. They are superseded now; the newest
		// waits for its own approval, and skippers after it behind it.
		held := false
		for _, p := range d.group {
			switch {
			case d.skips(p, k) && !held:
				d.act(Skip, p, k)
			case d.skips(p, k):
				d.wait(p, k, newest, -1, nil, -1)
			case p == newest:
				d.wait(p, k, -1, -1, d.blockersFor(p, k, blockers), -1)
				held = true
			default:
				d.act(Supersede, p, k)
			}
		}
		return busy
	}
	if newest >= 0 && busy < 0 && len(d.blockersFor(newest, k, blockers)) == 0 {
		for _, p := range d.group {
			switch {
			case d.skips(p, k):
				d.act(Skip, p, k)
			case p == newest:
				d.act(Enter, p, k)
			default:
				d.act(Supersede, p, k)
			}
		}
		return newest
	}
	// Nothing enters now, so nothing is superseded yet: which run wins is
	// settled when the stage frees (the newest may be cancelled meanwhile,
	// or a newer one arrive). Skippers go until the first member that has
	// to wait.
	prev, held := -1, false
	for _, p := range d.group {
		if d.skips(p, k) {
			if !held {
				d.act(Skip, p, k)
				continue
			}
			d.wait(p, k, prev, -1, nil, -1)
		} else {
			newer := -1
			if p != newest {
				newer = newest
			}
			d.wait(p, k, -1, busy, d.blockersFor(p, k, blockers), newer)
			held = true
		}
		prev = p
	}
	return busy
}
