package facts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/internal/gate"
)

const (
	testRepo = "acme/api"
	headSHA  = "1111111111111111111111111111111111111111"
	mergeSHA = "2222222222222222222222222222222222222222"
)

// fakeReader is a Reader over plain values, in the manner of policy-bot's
// pulltest.Context. It records every call as "Method(arg)" and fails a
// method whose name is in errs. Facts are keyed by what they are read by,
// so that a read with the wrong argument gets nothing (or the wrong thing)
// and shows.
type fakeReader struct {
	config     map[string]string // ref → file; missing means not found
	prs        map[int]PR
	prByCommit map[string]PR
	reviews    map[int][]gate.Review
	protection map[string]gate.Protection
	checks     map[string][]gate.Check
	tags       []Tag
	files      map[int][]string
	errs       map[string]error

	mu    sync.Mutex
	calls []string
}

var _ Reader = (*fakeReader)(nil)

func (f *fakeReader) record(method string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if arg == nil {
		f.calls = append(f.calls, method+"()")
	} else {
		f.calls = append(f.calls, fmt.Sprintf("%s(%v)", method, arg))
	}
	return f.errs[method]
}

// Calls returns the recorded calls, sorted: Gather makes them concurrently.
func (f *fakeReader) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.calls))
}

func (f *fakeReader) Config(_ context.Context, ref string) ([]byte, bool, error) {
	if err := f.record("Config", ref); err != nil {
		return nil, false, err
	}
	data, ok := f.config[ref]
	if !ok {
		return nil, false, nil
	}
	return []byte(data), true, nil
}

func (f *fakeReader) PullRequest(_ context.Context, number int) (PR, error) {
	if err := f.record("PullRequest", number); err != nil {
		return PR{}, err
	}
	pr, ok := f.prs[number]
	if !ok {
		return PR{}, fmt.Errorf("no pull request #%d", number)
	}
	return pr, nil
}

func (f *fakeReader) PullRequestForCommit(_ context.Context, sha string) (PR, bool, error) {
	if err := f.record("PullRequestForCommit", sha); err != nil {
		return PR{}, false, err
	}
	pr, ok := f.prByCommit[sha]
	return pr, ok, nil
}

func (f *fakeReader) Reviews(_ context.Context, number int) ([]gate.Review, error) {
	if err := f.record("Reviews", number); err != nil {
		return nil, err
	}
	return f.reviews[number], nil
}

func (f *fakeReader) Protection(_ context.Context, branch string) (gate.Protection, error) {
	if err := f.record("Protection", branch); err != nil {
		return gate.Protection{}, err
	}
	return f.protection[branch], nil
}

func (f *fakeReader) Checks(_ context.Context, sha string) ([]gate.Check, error) {
	if err := f.record("Checks", sha); err != nil {
		return nil, err
	}
	return f.checks[sha], nil
}

func (f *fakeReader) Tags(context.Context) ([]Tag, error) {
	if err := f.record("Tags", nil); err != nil {
		return nil, err
	}
	return f.tags, nil
}

func (f *fakeReader) Files(_ context.Context, number, changedFiles int) ([]string, bool, error) {
	if err := f.record("Files", number); err != nil {
		return nil, false, err
	}
	files := f.files[number]
	return files, len(files) >= changedFiles, nil
}

// PRs #7 (given by the delivery) and #9 (found by commit) have different
// heads, reviews and checks, and the merge commit has checks of its own,
// so reading by the wrong key shows in the snapshot.
var (
	pr7 = PR{Number: 7, Title: "fix: x", Author: "alice", HeadSHA: headSHA, BaseRef: "main", Labels: []string{"no-deploy-to-qa"}, Merged: true, MergeSHA: mergeSHA}
	pr9 = PR{Number: 9, Title: "feat: y", Author: "dave", HeadSHA: "9999999999999999999999999999999999999999", BaseRef: "main", Merged: true, MergeSHA: mergeSHA}
)

func newFakeReader() *fakeReader {
	return &fakeReader{
		config:     map[string]string{mergeSHA: "version: 1\n", headSHA: "version: 1 # head\n"},
		prs:        map[int]PR{7: pr7, 9: pr9},
		prByCommit: map[string]PR{mergeSHA: pr9},
		reviews: map[int][]gate.Review{
			7: {{User: "bob", State: gate.StateApproved, CommitID: pr7.HeadSHA, ID: 1}},
			9: {{User: "carol", State: gate.StateApproved, CommitID: pr9.HeadSHA, ID: 2}},
		},
		protection: map[string]gate.Protection{"main": {Known: true, Protected: true, RequiredChecks: []string{"ci"}}},
		checks: map[string][]gate.Check{
			pr7.HeadSHA: {{Name: "ci", Source: gate.SourceCheckRun, State: gate.CheckSuccess}},
			pr9.HeadSHA: {{Name: "ci", Source: gate.SourceStatus, State: gate.CheckPending}},
			mergeSHA:    {{Name: "ci", Source: gate.SourceCheckRun, State: gate.CheckFailure}},
		},
		tags: []Tag{{Name: "v1.0.0", SHA: "abc"}},
	}
}

func TestGather(t *testing.T) {
	f := newFakeReader()
	common := Snapshot{
		Config: []byte("version: 1\n"), ConfigFound: true,
		Protection: f.protection["main"],
		Tags:       f.tags,
	}
	with := func(pr PR) Snapshot {
		s := common
		s.PR, s.HasPR = pr, true
		s.Reviews, s.Checks = f.reviews[pr.Number], f.checks[pr.HeadSHA]
		return s
	}
	// Every path reads these three, keyed by the input's SHA and branch.
	base := []string{"Config(" + mergeSHA + ")", "Protection(main)", "Tags()"}

	tests := []struct {
		name      string
		in        Input
		want      Snapshot
		wantCalls []string
	}{
		{
			name: "PR given: reviews by its number, checks on its head, config at SHA",
			in:   Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7},
			want: with(pr7),
			wantCalls: append(slices.Clone(base),
				"Reviews(7)", "Checks("+headSHA+")"),
		},
		{
			name:      "PR given wins over LookupPR",
			in:        Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7, LookupPR: true},
			want:      with(pr7),
			wantCalls: append(slices.Clone(base), "Reviews(7)", "Checks("+headSHA+")"),
		},
		{
			name: "LookupPR finds the PR, then reads its reviews and checks",
			in:   Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", LookupPR: true},
			want: with(pr9),
			wantCalls: append(slices.Clone(base),
				"PullRequestForCommit("+mergeSHA+")", "Reviews(9)", "Checks("+pr9.HeadSHA+")"),
		},
		{
			name:      "LookupPR, no PR merged the commit: no review or check reads",
			in:        Input{Repo: testRepo, SHA: "5555555555555555555555555555555555555555", Branch: "main", LookupPR: true},
			want:      Snapshot{Protection: common.Protection, Tags: common.Tags},
			wantCalls: []string{"Config(5555555555555555555555555555555555555555)", "Protection(main)", "PullRequestForCommit(5555555555555555555555555555555555555555)", "Tags()"},
		},
		{
			name:      "neither PR nor LookupPR: no PR reads",
			in:        Input{Repo: testRepo, SHA: mergeSHA, Branch: "main"},
			want:      common,
			wantCalls: base,
		},
		{
			name: "preview: config at the head",
			in:   Input{Repo: testRepo, SHA: headSHA, Branch: "main", PR: &pr7},
			want: func() Snapshot {
				s := with(pr7)
				s.Config = []byte("version: 1 # head\n")
				return s
			}(),
			wantCalls: []string{"Checks(" + headSHA + ")", "Config(" + headSHA + ")", "Protection(main)", "Reviews(7)", "Tags()"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeReader()
			got, err := Gather(context.Background(), f, tt.in)
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("snapshot mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.wantCalls)), f.Calls()); diff != "" {
				t.Errorf("reads mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGatherGivenPRIsCopied: the snapshot must not alias the caller's PR.
func TestGatherGivenPRIsCopied(t *testing.T) {
	pr := pr7
	s, err := Gather(context.Background(), newFakeReader(), Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr})
	if err != nil {
		t.Fatal(err)
	}
	pr.Number = 8
	if s.PR.Number != 7 {
		t.Errorf("snapshot PR changed with the caller's: #%d", s.PR.Number)
	}
}

func TestGatherErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, method := range []string{"Config", "Tags", "Protection", "Reviews", "Checks", "PullRequestForCommit"} {
		for _, lookup := range []bool{false, true} {
			if method == "PullRequestForCommit" && !lookup {
				continue
			}
			t.Run(fmt.Sprintf("%s/lookup=%v", method, lookup), func(t *testing.T) {
				f := newFakeReader()
				f.errs = map[string]error{method: boom}
				in := Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7}
				if lookup {
					in.PR, in.LookupPR = nil, true
				}
				s, err := Gather(context.Background(), f, in)
				if !errors.Is(err, boom) {
					t.Fatalf("Gather error = %v, want it to wrap %v", err, boom)
				}
				if want := "gather facts for acme/api@2222222: boom"; err.Error() != want {
					t.Errorf("Gather error = %q, want %q", err, want)
				}
				if s.ConfigFound || s.HasPR || s.Tags != nil || s.Reviews != nil || s.Checks != nil || s.Config != nil {
					t.Errorf("Gather returned facts with its error: %+v", s)
				}
			})
		}
	}
}

func TestGatherShortSHA(t *testing.T) {
	f := newFakeReader()
	f.errs = map[string]error{"Tags": errors.New("x")}
	_, err := Gather(context.Background(), f, Input{Repo: testRepo, SHA: "abc", Branch: "main"})
	if err == nil || !strings.HasPrefix(err.Error(), "gather facts for acme/api@abc: ") {
		t.Errorf("Gather error = %v, want the short SHA kept whole", err)
	}
}

func TestGateFacts(t *testing.T) {
	s := Snapshot{
		HasPR:      true,
		PR:         pr7,
		Reviews:    []gate.Review{{User: "bob"}},
		Protection: gate.Protection{Known: true},
		Checks:     []gate.Check{{Name: "ci"}},
	}
	got := s.GateFacts(testRepo, "main")
	want := gate.Facts{
		Repo: testRepo, HasPR: true, PRNumber: 7, Author: "alice", HeadSHA: headSHA, BaseRef: "main", Merged: true,
		Reviews: s.Reviews, Protection: s.Protection, Checks: s.Checks,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GateFacts mismatch (-want +got):\n%s", diff)
	}
}

const multiConfig = `version: 1
pipelines:
  - name: api
    paths: ["services/api/**"]
  - name: web
    paths: ["services/web/**"]
`

// TestGatherFilesOnlyInThePipelinesForm: the files of the pull request
// decide which pipelines run, so the `pipelines:` form reads them, by the
// right number and count; the single-pipeline form (TestGather) and an
// invalid file never do.
func TestGatherFilesOnlyInThePipelinesForm(t *testing.T) {
	pr7 := pr7
	pr7.ChangedFiles = 2
	files := map[int][]string{7: {"services/api/a.go", "README.md"}, 9: {"services/web/b.ts"}}
	tests := []struct {
		name          string
		config        string
		in            Input
		wantFiles     []string
		wantComplete  bool
		wantFilesCall string // "" means no Files call
	}{
		{
			name:   "PR given: files after the config",
			config: multiConfig, in: Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7},
			wantFiles: files[7], wantComplete: true, wantFilesCall: "Files(7)",
		},
		{
			name:   "LookupPR: files of the PR found",
			config: multiConfig, in: Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", LookupPR: true},
			wantFiles: files[9], wantComplete: true, wantFilesCall: "Files(9)",
		},
		{
			name:   "no PR: no files",
			config: multiConfig, in: Input{Repo: testRepo, SHA: mergeSHA, Branch: "main"},
		},
		{
			name:   "invalid pipelines form: no files",
			config: multiConfig + "stages: []\n", in: Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7},
		},
		{
			name:   "single-pipeline form: no files",
			config: "version: 1\nstages:\n  - {name: qa, target: x}\n", in: Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeReader()
			f.config[mergeSHA] = tt.config
			f.files = files
			got, err := Gather(context.Background(), f, tt.in)
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			if !slices.Equal(got.Files, tt.wantFiles) || got.FilesComplete != tt.wantComplete {
				t.Errorf("Files, FilesComplete = %q, %v; want %q, %v", got.Files, got.FilesComplete, tt.wantFiles, tt.wantComplete)
			}
			var filesCalls []string
			for _, c := range f.Calls() {
				if strings.HasPrefix(c, "Files(") {
					filesCalls = append(filesCalls, c)
				}
			}
			var want []string
			if tt.wantFilesCall != "" {
				want = []string{tt.wantFilesCall}
			}
			if !slices.Equal(filesCalls, want) {
				t.Errorf("Files calls = %q, want %q (all: %q)", filesCalls, want, f.Calls())
			}
		})
	}
}

// A list GitHub cut short reaches the snapshot as incomplete.
func TestGatherFilesIncomplete(t *testing.T) {
	f := newFakeReader()
	f.config[mergeSHA] = multiConfig
	f.files = map[int][]string{7: {"services/api/a.go"}}
	pr := pr7
	pr.ChangedFiles = 3500
	got, err := Gather(context.Background(), f, Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr})
	if err != nil {
		t.Fatal(err)
	}
	if got.FilesComplete || len(got.Files) != 1 {
		t.Errorf("Files, FilesComplete = %q, %v; want the one file, incomplete", got.Files, got.FilesComplete)
	}
}

func TestGatherFilesError(t *testing.T) {
	boom := errors.New("boom")
	for _, lookup := range []bool{false, true} {
		f := newFakeReader()
		f.config[mergeSHA] = multiConfig
		f.errs = map[string]error{"Files": boom}
		in := Input{Repo: testRepo, SHA: mergeSHA, Branch: "main", PR: &pr7}
		if lookup {
			in.PR, in.LookupPR = nil, true
		}
		if s, err := Gather(context.Background(), f, in); !errors.Is(err, boom) || s.Files != nil {
			t.Errorf("lookup=%v: Gather = %+v, %v; want the Files error", lookup, s.Files, err)
		}
	}
}
