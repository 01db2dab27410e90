package store

import "testing"

// The shared queries' ? placeholders become $1, $2… for PostgreSQL; a ?
// inside a string literal, a quoted identifier or a comment stays.
func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`UPDATE t SET a = ? WHERE b = ? AND c IN (?,?)`, `UPDATE t SET a = $1 WHERE b = $2 AND c IN ($3,$4)`},
		{`SELECT '?' , ? FROM "we?rd"`, `SELECT '?' , $1 FROM "we?rd"`},
		{"SELECT ? -- why?\nFROM t WHERE x = ?", "SELECT $1 -- why?\nFROM t WHERE x = $2"},
		{`SELECT 'it''s', ?`, `SELECT 'it''s', $1`},
		{`SELECT a - ? FROM t`, `SELECT a - $1 FROM t`},
		{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
