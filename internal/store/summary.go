package store

import "encoding/json"

// RunSummary is what a merge's evaluation concluded, kept with its run
// (Run.Summary, as JSON): the merge handler writes it; the reports on the
// pull request, the dashboard and the API read it.
type RunSummary struct {
	// Kind is the verdict (plan.Kind's words: release, refused, …).
	Kind     string   `json:"kind"`
	Reasons  []string `json:"reasons,omitempty"`  // why the gate refused
	Problems []string `json:"problems,omitempty"` // what is wrong with the configuration
	Notes    []string `json:"notes,omitempty"`    // what the gate could not check
	// Why is why the merge runs the pipelines it runs when its files
	// cannot tell: every one runs.
	Why []string `json:"why,omitempty"`
	// Refused are the pipelines whose releases GitHub refused at the last
	// evaluation (the others roll out meanwhile); the next clears them.
	Refused []RefusedRelease `json:"refused,omitempty"`
}

// RefusedRelease is a release of the merge GitHub refused.
type RefusedRelease struct {
	Pipeline string `json:"pipeline"`
	Tag      string `json:"tag"`
	// Reason is GitHub's answer, as it gave it.
	Reason string `json:"reason"`
	// Job is true when an Action job met the refusal: it fails, and
	// nothing tries again until the job is re-run or the next merge's job
	// catches this merge up.
	Job bool `json:"job,omitempty"`
}

// Summarized is the run's summary; an empty or unreadable one says
// nothing.
func (r Run) Summarized() RunSummary {
	var s RunSummary
	if len(r.Summary) == 0 || json.Unmarshal(r.Summary, &s) != nil {
		return RunSummary{}
	}
	return s
}
