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

		{name: "deploy", body: "/shipbot deploy prod", want: C{Verb: "deploy", Stage: "prod"}, line: "/shipbot deploy prod", found: true},
		{name: "deploy force", body: "/shipbot deploy prod --force", want: C{Verb: "deploy", Stage: "prod", Force: true}, line: "/shipbot deploy prod --force", found: true},
		{name: "force first", body: "/shipbot deploy --force prod", want: C{Verb: "deploy", Stage: "prod", Force: true}, line: "/shipbot deploy --force prod", found: true},
		{name: "case-insensitive verb and flag", body: "/shipbot DePlOy Prod-2_b --FORCE", want: C{Verb: "deploy", Stage: "Prod-2_b", Force: true}, line: "/shipbot DePlOy Prod-2_b --FORCE", found: true},
		{name: "case-insensitive prefix", body: "/ShipBot status", want: C{Verb: "status"}, line: "/ShipBot status", found: true},
		{name: "leading whitespace and CRLF", body: "Thanks!\r\n   \t/shipbot   retry   qa  \r\nbye", want: C{Verb: "retry", Stage: "qa"}, line: "/shipbot   retry   qa", found: true},
		{name: "first command wins", body: "/shipbot rollback prod\n/shipbot deploy prod", want: C{Verb: "rollback", Stage: "prod"}, line: "/shipbot rollback prod", found: true},
		{name: "first command wins even if bad", body: "/shipbot nope\n/shipbot status", line: "/shipbot nope", found: true, err: "unknown command"},
		{name: "freeze", body: "/shipbot freeze", want: C{Verb: "freeze"}, line: "/shipbot freeze", found: true},
		{name: "freeze reason", body: "/shipbot freeze  incident  #42: db failover", want: C{Verb: "freeze", Reason: "incident  #42: db failover"}, line: "/shipbot freeze  incident  #42: db failover", found: true},
		{name: "unfreeze", body: "/shipbot unfreeze", want: C{Verb: "unfreeze"}, line: "/shipbot unfreeze", found: true},
		{name: "status", body: "/shipbot status", want: C{Verb: "status"}, line: "/shipbot status", found: true},
		{name: "help", body: "/shipbot help", want: C{Verb: "help"}, line: "/shipbot help", found: true},

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
		{name: "force on freeze", body: "/shipbot freeze --force", line: "/shipbot freeze --force", found: true, err: "only goes with deploy"},
		{name: "status with args", body: "/shipbot status prod", line: "/shipbot status prod", found: true, err: "no arguments"},
		{name: "unfreeze with args", body: "/shipbot unfreeze now", line: "/shipbot unfreeze now", found: true, err: "no arguments"},
		{name: "help with args", body: "/shipbot help me", line: "/shipbot help me", found: true, err: "no arguments"},
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
	for _, verb := range []string{"deploy", "retry", "rollback", "freeze", "unfreeze", "status", "help"} {
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
	if len(lines) != 8 {
		t.Errorf("help is %d lines; want a title and 7 commands", len(lines))
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
