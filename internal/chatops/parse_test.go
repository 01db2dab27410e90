package chatops_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/internal/chatops"
)

func TestParse(t *testing.T) {
	type C = chatops.Command
	for _, tc := range []struct {
		name  string
		body  string
		want  C
		line  string
		found bool
		err   string // substring of the problem; "" for none
	}{
		{name: "no command", body: "LGTM, ship it"},
		{name: "empty", body: ""},
		{name: "mid-line mention is not a command", body: "please run /shipbot deploy prod"},
		{name: "quoted is not a command", body: "> /shipbot deploy prod\nthanks"},
		{name: "longer word", body: "/shipbots deploy prod"},
		{name: "in a code fence", body: "```\n/shipbot deploy prod\n```\n"},
		{name: "after a code fence", body: "```\n/shipbot deploy prod\n```\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},

		// Only what GitHub shows as a line of its own counts: code is an
		// example, a quote is someone else's words, an HTML comment is
		// invisible (issue 10).
		{name: "in a tilde fence", body: "~~~\n/shipbot deploy prod\n~~~"},
		{name: "in a fence with an info string", body: "Try:\n```shell title=\"ops\"\n/shipbot deploy prod\n```"},
		{name: "in a fence indented three spaces", body: "   ```\n/shipbot deploy prod\n   ```"},
		{name: "shorter fence does not close a longer one", body: "````\n```\n/shipbot deploy prod\n````"},
		{name: "backticks do not close a tilde fence", body: "~~~\n```\n/shipbot deploy prod\n~~~"},
		{name: "an unclosed fence runs to the end", body: "```\nsome code\n\n/shipbot deploy prod"},
		{name: "in a fence in a list item", body: "Steps:\n- run\n  ```\n  /shipbot deploy prod\n  ```"},
		{name: "indented code after a blank line", body: "Example:\n\n    /shipbot deploy prod\n"},
		{name: "indented code at the start", body: "    /shipbot deploy prod"},
		{name: "indented by a tab", body: "\t/shipbot deploy prod"},
		{name: "three spaces and a tab are four columns", body: "   \t/shipbot deploy prod"},
		{name: "four spaces after a paragraph line", body: "Run this:\n    /shipbot deploy prod"},
		{name: "nested quote", body: ">> /shipbot deploy prod"},
		{name: "indented quote", body: "   > /shipbot deploy prod"},
		{name: "quote in a list item", body: "- > /shipbot deploy prod"},
		{name: "lazy continuation of a quote", body: "> can we ship?\n/shipbot deploy prod"},
		{name: "in an HTML comment", body: "LGTM <!-- /shipbot deploy prod -->"},
		{name: "in a multi-line HTML comment", body: "LGTM\n\n<!--\n/shipbot deploy prod\n-->"},
		{name: "in an HTML comment opened mid-line", body: "LGTM <!-- note\n/shipbot deploy prod\n-->"},
		{name: "in an unclosed HTML comment", body: "LGTM <!--\n\n/shipbot deploy prod"},
		{name: "comment joins the line to the one before", body: "LGTM <!--\n--> /shipbot deploy prod"},
		{name: "escaped --> in text does not close a comment", body: "<div><!--\n\nnot the end -->\n\n/shipbot deploy prod"},
		{name: "in a table", body: "| stage | go |\n| --- | --- |\n/shipbot deploy prod"},

		{name: "after a tilde fence with an info string", body: "~~~ sh\n/shipbot rollback prod\n~~~\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "after a longer closing fence", body: "```\ncode\n`````\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "after a fence in a list item", body: "- run\n  ```\n  /shipbot deploy prod\n  ```\n\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "after indented code", body: "    /shipbot deploy prod\n\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "after a quote and a blank line", body: "> can we ship?\n\n/shipbot deploy prod", want: C{Verb: "deploy", Stage: "prod"}, line: "/shipbot deploy prod", found: true},
		{name: "after a closed HTML comment", body: "<!-- /shipbot deploy prod -->\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "after a closed multi-line HTML comment", body: "Thanks <!-- a\nb -->\n\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "comment in a code block hides nothing", body: "```html\n<!--\n```\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "comment cut out of the line", body: "/shipbot freeze db failover <!-- and @everyone -->", want: C{Verb: "freeze", Reason: "db failover"}, line: "/shipbot freeze db failover", found: true},
		{name: "nested too deep to be worth parsing", body: strings.Repeat("> ", 40) + "x\n\n/shipbot status"},
		{name: "after a long rule", body: strings.Repeat("-", 3000) + "\n\n/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "in a list item's paragraph", body: "1. a\n   /shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},

		{name: "deploy", body: "/shipbot deploy prod", want: C{Verb: "deploy", Stage: "prod"}, line: "/shipbot deploy prod", found: true},
		{name: "deploy force", body: "/shipbot deploy prod --force", want: C{Verb: "deploy", Stage: "prod", Force: true}, line: "/shipbot deploy prod --force", found: true},
		{name: "force first", body: "/shipbot deploy --force prod", want: C{Verb: "deploy", Stage: "prod", Force: true}, line: "/shipbot deploy --force prod", found: true},
		{name: "case-insensitive verb and flag", body: "/shipbot DePlOy Prod-2_b --FORCE", want: C{Verb: "deploy", Stage: "Prod-2_b", Force: true}, line: "/shipbot DePlOy Prod-2_b --FORCE", found: true},
		{name: "case-insensitive prefix", body: "/ShipBot status", want: C{Verb: "status"}, line: "/ShipBot status", found: true},
		{name: "leading spaces and CRLF", body: "Thanks!\r\n   /shipbot   retry   qa  \r\nbye", want: C{Verb: "retry", Stage: "qa"}, line: "/shipbot   retry   qa", found: true},
		{name: "one leading space", body: " /shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "lone CR line endings", body: "Thanks!\r/shipbot status\rbye", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "first command wins", body: "/shipbot rollback prod\n/shipbot deploy prod", want: C{Verb: "rollback", Stage: "prod"}, line: "/shipbot rollback prod", found: true},
		{name: "first command wins even if bad", body: "/shipbot nope\n/shipbot status", line: "/shipbot nope", found: true, err: "unknown command"},
		{name: "freeze", body: "/shipbot freeze", want: C{Verb: "freeze"}, line: "/shipbot freeze", found: true},
		{name: "freeze reason", body: "/shipbot freeze  incident  #42: db failover", want: C{Verb: "freeze", Reason: "incident  #42: db failover"}, line: "/shipbot freeze  incident  #42: db failover", found: true},
		{name: "unfreeze", body: "/shipbot unfreeze", want: C{Verb: "unfreeze"}, line: "/shipbot unfreeze", found: true},
		{name: "status", body: "/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "help", body: "/shipbot help", want: C{Verb: "help"}, line: "/shipbot help", found: true},
		{name: "approve", body: "/shipbot approve prod", want: C{Verb: "approve", Stage: "prod"}, line: "/shipbot approve prod", found: true},
		{name: "approve a pipeline's stage", body: "/shipbot Approve api/prod", want: C{Verb: "approve", Stage: "api/prod"}, line: "/shipbot Approve api/prod", found: true},
		{name: "reject", body: "/shipbot reject prod", want: C{Verb: "reject", Stage: "prod"}, line: "/shipbot reject prod", found: true},
		{name: "reject reason", body: "/shipbot  reject  prod   error rate  up 3% <!-- @everyone -->", want: C{Verb: "reject", Stage: "prod", Reason: "error rate  up 3%"}, line: "/shipbot  reject  prod   error rate  up 3%", found: true},
		{name: "reject a pipeline's stage with a reason", body: "/shipbot reject web/prod-eu see #12", want: C{Verb: "reject", Stage: "web/prod-eu", Reason: "see #12"}, line: "/shipbot reject web/prod-eu see #12", found: true},
		{name: "reject reason that looks like a stage", body: "/shipbot reject prod qa first", want: C{Verb: "reject", Stage: "prod", Reason: "qa first"}, line: "/shipbot reject prod qa first", found: true},
		{name: "deploy a pipeline's stage", body: "/shipbot deploy api/qa", want: C{Verb: "deploy", Stage: "api/qa"}, line: "/shipbot deploy api/qa", found: true},

		{name: "bare prefix", body: "/shipbot", line: "/shipbot", found: true, err: "no command"},
		{name: "unknown verb", body: "/shipbot frobnicate", line: "/shipbot frobnicate", found: true, err: "unknown command"},
		{name: "unknown verb with force", body: "/shipbot frobnicate --force", line: "/shipbot frobnicate --force", found: true, err: "unknown command"},
		{name: "deploy without stage", body: "/shipbot deploy", line: "/shipbot deploy", found: true, err: "needs a stage"},
		{name: "deploy only force", body: "/shipbot deploy --force", line: "/shipbot deploy --force", found: true, err: "needs a stage"},
		{name: "retry without stage", body: "/shipbot retry", line: "/shipbot retry", found: true, err: "needs a stage"},
		{name: "rollback without stage", body: "/shipbot rollback", line: "/shipbot rollback", found: true, err: "needs a stage"},
		{name: "two stages", body: "/shipbot deploy qa prod", line: "/shipbot deploy qa prod", found: true, err: "one stage"},
		{name: "bad stage", body: "/shipbot deploy prod;rm", line: "/shipbot deploy prod;rm", found: true, err: "stage name"},
		{name: "stage with dot", body: "/shipbot retry eu.west", line: "/shipbot retry eu.west", found: true, err: "stage name"},
		{name: "unknown flag", body: "/shipbot deploy prod --yes", line: "/shipbot deploy prod --yes", found: true, err: "one stage"},
		{name: "force twice", body: "/shipbot deploy prod --force --force", line: "/shipbot deploy prod --force --force", found: true, err: "twice"},
		{name: "force on retry", body: "/shipbot retry prod --force", line: "/shipbot retry prod --force", found: true, err: "only goes with deploy"},
		{name: "force on rollback", body: "/shipbot rollback prod --force", line: "/shipbot rollback prod --force", found: true, err: "only goes with deploy"},
		{name: "rollback to a version", body: "/shipbot rollback prod to v0.1.0", want: C{Verb: "rollback", Stage: "prod", To: "v0.1.0"}, line: "/shipbot rollback prod to v0.1.0", found: true},
		{name: "rollback TO a bare version", body: "/shipbot Rollback api/prod TO 1.2.0", want: C{Verb: "rollback", Stage: "api/prod", To: "1.2.0"}, line: "/shipbot Rollback api/prod TO 1.2.0", found: true},
		{name: "rollback to nothing", body: "/shipbot rollback prod to", line: "/shipbot rollback prod to", found: true, err: "optionally `to <version>`"},
		{name: "rollback without to", body: "/shipbot rollback prod v1.0.0", line: "/shipbot rollback prod v1.0.0", found: true, err: "optionally `to <version>`"},
		{name: "rollback to a bad version", body: "/shipbot rollback prod to v1<b>", line: "/shipbot rollback prod to v1<b>", found: true, err: "a version is a tag"},
		{name: "to on retry", body: "/shipbot retry prod to v1.0.0", line: "/shipbot retry prod to v1.0.0", found: true, err: "one stage"},
		{name: "force on freeze", body: "/shipbot freeze --force", line: "/shipbot freeze --force", found: true, err: "only goes with deploy"},
		{name: "status with args", body: "/shipbot status prod", line: "/shipbot status prod", found: true, err: "no arguments"},
		{name: "unfreeze with args", body: "/shipbot unfreeze now", line: "/shipbot unfreeze now", found: true, err: "no arguments"},
		{name: "help with args", body: "/shipbot help me", line: "/shipbot help me", found: true, err: "no arguments"},
		{name: "approve without stage", body: "/shipbot approve", line: "/shipbot approve", found: true, err: "approve needs a stage"},
		{name: "approve two stages", body: "/shipbot approve qa prod", line: "/shipbot approve qa prod", found: true, err: "approve takes one stage"},
		{name: "approve with a reason", body: "/shipbot approve prod lgtm", line: "/shipbot approve prod lgtm", found: true, err: "one stage"},
		{name: "approve force", body: "/shipbot approve prod --force", line: "/shipbot approve prod --force", found: true, err: "only goes with deploy"},
		{name: "reject without stage", body: "/shipbot reject", line: "/shipbot reject", found: true, err: "reject needs a stage"},
		{name: "reject force", body: "/shipbot reject --force prod", line: "/shipbot reject --force prod", found: true, err: "only goes with deploy"},
		{name: "reject bad stage", body: "/shipbot reject prod;rm it broke", line: "/shipbot reject prod;rm it broke", found: true, err: "stage name"},
		{name: "two slashes", body: "/shipbot approve api/prod/eu", line: "/shipbot approve api/prod/eu", found: true, err: "stage name"},
		{name: "no pipeline before the slash", body: "/shipbot approve /prod", line: "/shipbot approve /prod", found: true, err: "stage name"},
		{name: "no stage after the slash", body: "/shipbot retry api/", line: "/shipbot retry api/", found: true, err: "stage name"},
		{name: "bad pipeline name", body: "/shipbot approve a.b/prod", line: "/shipbot approve a.b/prod", found: true, err: "<pipeline>/<stage>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, line, found, err := chatops.Parse(tc.body)
			if found != tc.found || line != tc.line {
				t.Fatalf("found=%v line=%q; want found=%v line=%q", found, line, tc.found, tc.line)
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v; want %+v", err, tc.want)
				}
				if got != tc.want {
					t.Fatalf("got %+v; want %+v", got, tc.want)
				}
				return
			}
			var pe *chatops.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%+v); want a ParseError about %q", err, got, tc.err)
			}
			if !strings.Contains(pe.Problem, tc.err) {
				t.Errorf("problem %q; want it to mention %q", pe.Problem, tc.err)
			}
			if ans := pe.Answer(); !strings.HasSuffix(ans, chatops.Help) {
				t.Errorf("answer %q does not end with the help text", ans)
			}
		})
	}
}

func TestHelpListsEveryCommandOnce(t *testing.T) {
	lines := strings.Split(chatops.Help, "\n")
	for _, verb := range []string{"deploy", "retry", "rollback", "freeze", "unfreeze", "approve", "reject", "status", "help"} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "- `/shipbot "+verb+"`") || strings.HasPrefix(l, "- `/shipbot "+verb+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("help has %d lines for %s; want 1:\n%s", n, verb, chatops.Help)
		}
	}
	if len(lines) != 10 {
		t.Errorf("help is %d lines; want a title and 9 commands", len(lines))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "- `/shipbot approve ") && (!strings.Contains(l, "maintain") || !strings.Contains(l, "approvers") || !strings.Contains(l, "author")) {
			t.Errorf("help for approve %q does not say who may: approvers, else maintain, never the author", l)
		}
	}
	if !strings.Contains(lines[0], "`<pipeline>/<stage>`") {
		t.Errorf("help title %q does not say how to name a pipeline's stage", lines[0])
	}
}

func TestValidStage(t *testing.T) {
	for s, want := range map[string]bool{
		"prod": true, "Prod-2_b": true, "api/prod": true, "web-app/prod_eu": true,
		"": false, "/": false, "api/": false, "/prod": false, "a/b/c": false, "a b": false, "eu.west": false,
		"api/pr<od": false, strings.Repeat("a", 100): true, strings.Repeat("a", 101): false,
		strings.Repeat("a", 100) + "/" + strings.Repeat("b", 100): true,
	} {
		if got := chatops.ValidStage(s); got != want {
			t.Errorf("ValidStage(%q) = %v; want %v", s, got, want)
		}
	}
}

func TestCommandString(t *testing.T) {
	for _, tc := range []struct {
		c    chatops.Command
		want string
	}{
		{chatops.Command{Verb: "deploy", Stage: "prod", Force: true}, "/shipbot deploy prod --force"},
		{chatops.Command{Verb: "freeze", Reason: "incident"}, "/shipbot freeze incident"},
		{chatops.Command{Verb: "status"}, "/shipbot status"},
		{chatops.Command{Verb: "approve", Stage: "api/prod"}, "/shipbot approve api/prod"},
		{chatops.Command{Verb: "reject", Stage: "prod", Reason: "error rate doubled"}, "/shipbot reject prod error rate doubled"},
		{chatops.Command{Verb: "rollback", Stage: "prod", To: "v1.2.0"}, "/shipbot rollback prod to v1.2.0"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v.String() = %q; want %q", tc.c, got, tc.want)
		}
		// The canonical form parses back to the command.
		if back, _, _, err := chatops.Parse(tc.c.String()); err != nil || back != tc.c {
			t.Errorf("Parse(%q) = %+v, %v", tc.c.String(), back, err)
		}
	}
}
