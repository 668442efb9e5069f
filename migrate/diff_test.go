package migrate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var hunkHeader = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)

// checkHunks checks every hunk of a unified diff against the texts it joins: the context and
// deleted lines must be old's lines from the header's -a for b lines, the context and added
// lines new's lines from +c for d lines, and applying the hunks to old must give new.
// It returns the hunk headers, spelled @@ -a,b +c,d @@ (diffutils leaves out a count of 1).
func checkHunks(t *testing.T, diff, old, new string) []string {
	t.Helper()
	oldLines := strings.SplitAfter(old, "\n")
	oldLines = oldLines[:len(oldLines)-1]
	newLines := strings.SplitAfter(new, "\n")
	newLines = newLines[:len(newLines)-1]
	var headers, applied []string
	copied := 0 // old lines consumed so far
	lines := strings.SplitAfter(diff, "\n")
	for i := 0; i < len(lines); i++ {
		m := hunkHeader.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		num := func(s, def string) int {
			if s == "" {
				s = def
			}
			n, _ := strconv.Atoi(s)
			return n
		}
		a, b, c, d := num(m[1], ""), num(m[2], "1"), num(m[3], ""), num(m[4], "1")
		headers = append(headers, fmt.Sprintf("@@ -%d,%d +%d,%d @@", a, b, c, d))
		// a and c are 1-based; an empty side names the line before it
		if b > 0 {
			a--
		}
		if d > 0 {
			c--
		}
		var from, to []string
		for i+1 < len(lines) && lines[i+1] != "" && strings.ContainsRune(" -+", rune(lines[i+1][0])) && !hunkHeader.MatchString(lines[i+1]) {
			i++
			l := lines[i]
			switch l[0] {
			case ' ':
				from, to = append(from, l[1:]), append(to, l[1:])
			case '-':
				from = append(from, l[1:])
			case '+':
				to = append(to, l[1:])
			}
		}
		if len(from) != b || len(to) != d {
			t.Errorf("%s: the hunk has %d old and %d new lines", m[0], len(from), len(to))
		}
		if a < copied || a+len(from) > len(oldLines) || strings.Join(oldLines[a:a+len(from)], "") != strings.Join(from, "") {
			t.Errorf("%s: the old side is not old's lines from line %d", m[0], a+1)
			continue
		}
		if c < 0 || c+len(to) > len(newLines) || strings.Join(newLines[c:c+len(to)], "") != strings.Join(to, "") {
			t.Errorf("%s: the new side is not new's lines from line %d", m[0], c+1)
		}
		applied = append(applied, oldLines[copied:a]...)
		applied = append(applied, to...)
		copied = a + len(from)
	}
	applied = append(applied, oldLines[copied:]...)
	if got := strings.Join(applied, ""); got != new {
		t.Errorf("applying the diff to old does not give new:\n%s", got)
	}
	return headers
}

// legacyFile is a long source file; rewritten changes lines (1-based) of it, far apart and
// near each other, and adds a line after some of them, as the migration's rewrites do.
func legacyFile(rewritten map[int]bool) (old, new string) {
	var o, n strings.Builder
	for i := 1; i <= 120; i++ {
		line := fmt.Sprintf("\tx%d := adapters.Legacy%d(ctx)\n", i, i)
		o.WriteString(line)
		if rewritten[i] {
			fmt.Fprintf(&n, "\tx%d := dspy.Current%d(ctx)\n", i, i)
			if i%2 == 0 {
				fmt.Fprintf(&n, "\t_ = x%d\n", i)
			}
			continue
		}
		n.WriteString(line)
	}
	return o.String(), n.String()
}

// The dry run's diff: every hunk header's line numbers are where its lines are, in the
// file on disk and in the rewritten one, also after hunks that join nearby rewrites and
// change the line count.
func TestDiffHunkHeadersHaveTheRealLineNumbers(t *testing.T) {
	old, new := legacyFile(map[int]bool{10: true, 14: true, 18: true, 50: true, 52: true, 90: true, 119: true})
	diff := unifiedDiff("app.go", []byte(old), []byte(new))
	headers := checkHunks(t, diff, old, new)
	if len(headers) != 4 {
		t.Errorf("%d hunks, want 4:\n%s", len(headers), diff)
	}
	// diffutils as an independent oracle: the rewrites are unambiguous, so any correct
	// diff has its hunks.
	if _, err := exec.LookPath("diff"); err != nil {
		return
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "old"), []byte(old), 0o644)
	os.WriteFile(filepath.Join(dir, "new"), []byte(new), 0o644)
	out, _ := exec.Command("diff", "-u", filepath.Join(dir, "old"), filepath.Join(dir, "new")).Output()
	want := checkHunks(t, string(out), old, new)
	if strings.Join(headers, "\n") != strings.Join(want, "\n") {
		t.Errorf("hunk headers:\n%s\ndiff -u:\n%s", strings.Join(headers, "\n"), strings.Join(want, "\n"))
	}
}

func TestDiffOfEqualTextsIsEmpty(t *testing.T) {
	old, _ := legacyFile(nil)
	if d := unifiedDiff("app.go", []byte(old), []byte(old)); d != "" {
		t.Errorf("diff of a file with itself:\n%s", d)
	}
}
