package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// mustHash hashes password at bcrypt.MinCost.
func mustHash(t testing.TB, password string) string {
	t.Helper()
	h, err := HashPassword(password, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	return h
}

// htpasswdText renders users as an htpasswd file.
func htpasswdText(t testing.TB, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test file\n\n")
	for u, p := range users {
		fmt.Fprintf(&b, "%s:%s\n", u, mustHash(t, p))
	}
	return b.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHtpasswdCheckPassword(t *testing.T) {
	h, err := ParseHtpasswd(strings.NewReader(htpasswdText(t, credUsers)))
	if err != nil {
		t.Fatalf("ParseHtpasswd: %v", err)
	}
	if got, want := h.Len(), len(credUsers); got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	runCredCases(t, h)
	// Again: now some answers come from the cache, and must not change.
	runCredCases(t, h)
	h.SetCacheTTL(0)
	runCredCases(t, h)
}

func TestHtpasswdBcryptVariants(t *testing.T) {
	base := mustHash(t, "pw")
	if !strings.HasPrefix(base, "$2y$04$") {
		t.Fatalf("HashPassword = %q..., want the $2y$04$ prefix", base[:7])
	}
	rest := strings.TrimPrefix(base, "$2y$")
	text := "y:$2y$" + rest + "\na:$2a$" + rest + "\nb:$2b$" + rest + "\n"
	h, err := ParseHtpasswd(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseHtpasswd: %v", err)
	}
	got := map[string]string{}
	for _, u := range []string{"y", "a", "b"} {
		got[u+" right"] = outcome(h.CheckPassword(context.Background(), u, "pw"))
		got[u+" wrong"] = outcome(h.CheckPassword(context.Background(), u, "pW"))
	}
	want := map[string]string{"y right": "ok", "y wrong": "bad", "a right": "ok", "a wrong": "bad", "b right": "ok", "b wrong": "bad"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHtpasswdWhitespaceAndComments(t *testing.T) {
	ha, hb := mustHash(t, "pa"), mustHash(t, "pb")
	text := "alice:" + ha + "\r\n  bob:" + hb + "  \n# comment:with:colons\n   # indented comment\n\t\n\r\n"
	h, err := ParseHtpasswd(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseHtpasswd: %v", err)
	}
	got := []any{h.Len(),
		outcome(h.CheckPassword(context.Background(), "alice", "pa")),
		outcome(h.CheckPassword(context.Background(), "bob", "pb")),
	}
	if diff := cmp.Diff([]any{2, "ok", "ok"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHtpasswdEmptyAndZero(t *testing.T) {
	h, err := ParseHtpasswd(strings.NewReader("# nobody here\n"))
	if err != nil {
		t.Fatalf("ParseHtpasswd: %v", err)
	}
	var zero Htpasswd
	var nilH *Htpasswd
	// The unknown user is compared against a dummy of the default cost
	// (observed, not run, to keep the test fast).
	var costs []int
	for _, st := range []*Htpasswd{h, &zero} {
		st.compare = func(hash, password []byte) error {
			c, err := bcrypt.Cost(hash)
			if err != nil {
				return err
			}
			costs = append(costs, c)
			return bcrypt.ErrMismatchedHashAndPassword
		}
	}
	got := []any{
		h.Len(), zero.Len(), nilH.Len(),
		outcome(h.CheckPassword(context.Background(), "alice", "x")),
		outcome(zero.CheckPassword(context.Background(), "alice", "x")),
		outcome(nilH.CheckPassword(context.Background(), "alice", "x")), // real bcrypt
		costs,
		errors.Is(nilH.Reload(), errNoFile), errors.Is(h.Reload(), errNoFile),
	}
	want := []any{0, 0, 0, "bad", "bad", "bad", []int{bcrypt.DefaultCost, bcrypt.DefaultCost}, true, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestHtpasswdParseErrors checks line numbers, user names and error kinds,
// and that no hash ever appears in an error.
func TestHtpasswdParseErrors(t *testing.T) {
	good := mustHash(t, "pw")
	goodRest := good[7:] // 53 characters of salt and hash
	type result struct {
		Line int
		User string
		Kind string
	}
	tests := []struct {
		name   string
		text   string
		secret string // must not appear in the error
		want   result
	}{
		{"no colon", "alice", "", result{1, "", "malformed"}},
		{"no colon after comments", "# c\n\nalice:" + good + "\nbob\n", "", result{4, "", "malformed"}},
		{"empty user", ":" + good, good, result{1, "", "malformed"}},
		{"htdigest", "alice:realm:0123456789abcdef0123456789abcdef", "0123456789abcdef", result{1, "alice", "malformed"}},
		{"control character in user", "al\x01ice:" + good, good, result{1, "al\x01ice", "malformed"}},
		{"user not UTF-8", "al\xffice:" + good, good, result{1, "al\xffice", "malformed"}},
		{"user too long", strings.Repeat("u", 256) + ":" + good, good, result{1, strings.Repeat("u", 64) + "...", "malformed"}},
		{"sha", "# x\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "W6ph5Mm5Pz8GgiULbPgzG37mj9g=", result{2, "alice", "unsupported"}},
		{"apr1", "bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "HqJZimcKQFAMYayBlzkrA/", result{1, "bob", "unsupported"}},
		{"crypt", "carol:rqXexS6ZhobKA", "rqXexS6ZhobKA", result{1, "carol", "unsupported"}},
		{"sha512-crypt", "dave:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/", "qFmFH.bQmmtXzyBY0s9v7", result{1, "dave", "unsupported"}},
		{"plain text", "erin:hunter2hunter2", "hunter2hunter2", result{1, "erin", "unsupported"}},
		{"empty hash", "frank:", "", result{1, "frank", "unsupported"}},
		{"2x bcrypt", "gina:$2x$04$" + goodRest, goodRest, result{1, "gina", "unsupported"}},
		{"bcrypt too short", "hal:" + good[:59], good[7:59], result{1, "hal", "unsupported"}},
		{"bcrypt too long", "hal:" + good + "x", goodRest, result{1, "hal", "unsupported"}},
		{"bcrypt bad character", "ivy:" + good[:40] + "!" + good[41:], good[10:40], result{1, "ivy", "unsupported"}},
		{"bcrypt cost too low", "jo:$2y$03$" + goodRest, goodRest, result{1, "jo", "unsupported"}},
		{"bcrypt cost too high", "jo:$2y$18$" + goodRest, goodRest, result{1, "jo", "unsupported"}},
		{"bcrypt cost not digits", "jo:$2y$1a$" + goodRest, goodRest, result{1, "jo", "unsupported"}},
		{"duplicate", "alice:" + good + "\nbob:" + good + "\n\nalice:" + good + "\n", goodRest, result{4, "alice", "duplicate"}},
		{"line too long", "alice:" + good + "\n" + strings.Repeat("#", maxHtpasswdLine+1) + "\n", goodRest, result{2, "", "malformed"}},
	}
	got := map[string]result{}
	want := map[string]result{}
	for _, tt := range tests {
		want[tt.name] = tt.want
		h, err := ParseHtpasswd(strings.NewReader(tt.text))
		if err == nil {
			t.Errorf("%s: parsed with %d users, want an error", tt.name, h.Len())
			continue
		}
		var he *HtpasswdError
		if !errors.As(err, &he) {
			t.Errorf("%s: error %v is not an *HtpasswdError", tt.name, err)
			continue
		}
		if !errors.Is(err, ErrInvalidHtpasswd) {
			t.Errorf("%s: error %v does not wrap ErrInvalidHtpasswd", tt.name, err)
		}
		if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
			t.Errorf("%s: error %q reveals the hash", tt.name, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("line %d", he.Line)) {
			t.Errorf("%s: error %q does not name line %d", tt.name, err, he.Line)
		}
		kind := "other"
		switch {
		case errors.Is(err, ErrMalformedLine):
			kind = "malformed"
		case errors.Is(err, ErrUnsupportedHash):
			kind = "unsupported"
		case errors.Is(err, ErrDuplicateUser):
			kind = "duplicate"
			if !strings.Contains(err.Error(), "line 1") {
				t.Errorf("%s: error %q does not name the first line", tt.name, err)
			}
		}
		got[tt.name] = result{he.Line, he.User, kind}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parse errors (-want +got):\n%s", diff)
	}
}

func TestHtpasswdHashKindNamed(t *testing.T) {
	// The error says which scheme it found, from the prefix alone.
	tests := map[string]string{
		"{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=":     "{SHA}",
		"$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/": "$apr1$",
		"rqXexS6ZhobKA":                         "crypt(3)",
		"$1$abc$def":                            "MD5-crypt",
		"$y$j9T$abc$def":                        "yescrypt",
		"plain":                                 "plain-text",
	}
	for hash, word := range tests {
		_, err := ParseHtpasswd(strings.NewReader("u:" + hash))
		if err == nil || !strings.Contains(err.Error(), word) {
			t.Errorf("hash kind %q: error %v does not mention %q", word, err, word)
		}
	}
}

// endlessComments is a reader of comment lines that never ends.
type endlessComments struct{}

func (endlessComments) Read(p []byte) (int, error) {
	line := []byte("# a comment line of some length ................................\n")
	n := 0
	for n+len(line) <= len(p) {
		n += copy(p[n:], line)
	}
	if n == 0 {
		n = copy(p, line)
	}
	return n, nil
}

func TestHtpasswdFileTooLarge(t *testing.T) {
	_, err := ParseHtpasswd(endlessComments{})
	if !errors.Is(err, ErrInvalidHtpasswd) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("endless input: got %v, want ErrInvalidHtpasswd about the size", err)
	}
	// Exactly at the limit is fine.
	_, err = ParseHtpasswd(io.LimitReader(endlessComments{}, maxHtpasswdSize))
	if err != nil {
		t.Fatalf("file of exactly the maximum size: %v", err)
	}
}

type failingReader struct{}

var errDisk = errors.New("disk on fire")

func (failingReader) Read([]byte) (int, error) { return 0, errDisk }

func TestHtpasswdReadError(t *testing.T) {
	_, err := ParseHtpasswd(failingReader{})
	if !errors.Is(err, errDisk) || errors.Is(err, ErrInvalidHtpasswd) {
		t.Fatalf("got %v, want the reader's error and not ErrInvalidHtpasswd", err)
	}
}

func TestLoadHtpasswdErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadHtpasswd(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	path := filepath.Join(dir, "bad")
	writeFile(t, path, "ok:"+mustHash(t, "pw")+"\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
	_, err = LoadHtpasswd(path)
	var he *HtpasswdError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want an *HtpasswdError", err)
	}
	got := []any{he.Path, he.Line, he.User, strings.Contains(err.Error(), path+":2")}
	if diff := cmp.Diff([]any{path, 2, "alice", true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHtpasswdReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, htpasswdText(t, map[string]string{"alice": "one"}))
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatalf("LoadHtpasswd: %v", err)
	}
	ctx := context.Background()
	check := func() []any {
		return []any{h.Len(),
			outcome(h.CheckPassword(ctx, "alice", "one")),
			outcome(h.CheckPassword(ctx, "alice", "two")),
			outcome(h.CheckPassword(ctx, "bob", "b")),
		}
	}
	if diff := cmp.Diff([]any{1, "ok", "bad", "bad"}, check()); diff != "" {
		t.Fatalf("before reload (-want +got):\n%s", diff)
	}

	// A change is picked up.
	writeFile(t, path, htpasswdText(t, map[string]string{"alice": "two", "bob": "b"}))
	if err := h.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if diff := cmp.Diff([]any{2, "bad", "ok", "ok"}, check()); diff != "" {
		t.Errorf("after reload (-want +got):\n%s", diff)
	}

	// A broken file is refused and the old contents stay.
	writeFile(t, path, "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
	if err := h.Reload(); !errors.Is(err, ErrUnsupportedHash) {
		t.Errorf("Reload of a broken file: got %v, want ErrUnsupportedHash", err)
	}
	if diff := cmp.Diff([]any{2, "bad", "ok", "ok"}, check()); diff != "" {
		t.Errorf("after failed reload (-want +got):\n%s", diff)
	}

	// So does a vanished file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file: got %v, want os.ErrNotExist", err)
	}
	if diff := cmp.Diff([]any{2, "bad", "ok", "ok"}, check()); diff != "" {
		t.Errorf("after reload of a missing file (-want +got):\n%s", diff)
	}
}

// newTestHtpasswd loads users from a temporary file, with its own limiter
// and a fake clock.
func newTestHtpasswd(t *testing.T, users map[string]string, slots int) (*Htpasswd, string, *time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, htpasswdText(t, users))
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatalf("LoadHtpasswd: %v", err)
	}
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h.lim = newLimiter(slots)
	h.now = func() time.Time { return clock }
	return h, path, &clock
}

func TestHtpasswdCache(t *testing.T) {
	h, _, clock := newTestHtpasswd(t, map[string]string{"alice": "pw"}, 4)
	ctx := context.Background()
	type step struct {
		Outcome string
		Bcrypt  int64 // bcrypt runs so far
		Cached  int
	}
	var got []step
	do := func(user, password string) {
		err := h.CheckPassword(ctx, user, password)
		got = append(got, step{outcome(err), h.lim.acquired.Load(), h.load().cache.len()})
	}
	do("alice", "pw")    // bcrypt, cached
	do("alice", "pw")    // cache hit
	do("alice", "wrong") // bcrypt; failures are not cached
	do("alice", "wrong") // bcrypt again
	do("bob", "pw")      // unknown user: bcrypt against the dummy
	*clock = clock.Add(DefaultCacheTTL - time.Second)
	do("alice", "pw") // still cached
	*clock = clock.Add(time.Second)
	do("alice", "pw") // expired: bcrypt, cached again
	do("alice", "pw") // hit
	h.SetCacheTTL(0)
	do("alice", "pw") // cache off: bcrypt
	h.SetCacheTTL(time.Hour)
	do("alice", "pw") // the entry from before is still there
	want := []step{
		{"ok", 1, 1}, {"ok", 1, 1}, {"bad", 2, 1}, {"bad", 3, 1}, {"bad", 4, 1},
		{"ok", 4, 1}, {"ok", 5, 1}, {"ok", 5, 1}, {"ok", 6, 1}, {"ok", 6, 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cache behaviour (-want +got):\n%s", diff)
	}
}

func TestHtpasswdCacheInvalidatedByReload(t *testing.T) {
	h, path, _ := newTestHtpasswd(t, map[string]string{"alice": "old"}, 4)
	ctx := context.Background()
	if err := h.CheckPassword(ctx, "alice", "old"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if n := h.load().cache.len(); n != 1 {
		t.Fatalf("cache holds %d entries after a success, want 1", n)
	}
	// The password changes in the file: the cached success must not survive.
	writeFile(t, path, htpasswdText(t, map[string]string{"alice": "new"}))
	if err := h.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	before := h.lim.acquired.Load()
	got := []string{
		outcome(h.CheckPassword(ctx, "alice", "old")),
		outcome(h.CheckPassword(ctx, "alice", "new")),
	}
	if diff := cmp.Diff([]string{"bad", "ok"}, got); diff != "" {
		t.Errorf("after reload (-want +got):\n%s", diff)
	}
	if runs := h.lim.acquired.Load() - before; runs != 2 {
		t.Errorf("%d bcrypt runs after reload, want 2 (both answers computed, not cached)", runs)
	}

	// Even an unchanged file empties the cache.
	if err := h.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if n := h.load().cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after Reload, want 0", n)
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := cacheSize + 100
	for i := range n {
		c.add(c.key(fmt.Sprint("user", i), "pw"), t0.Add(time.Duration(i)*time.Millisecond), time.Hour)
	}
	now := t0.Add(time.Duration(n) * time.Millisecond)
	got := []any{
		c.len(),
		c.hit(c.key("user0", "pw"), now, time.Hour),                        // oldest: evicted
		c.hit(c.key("user99", "pw"), now, time.Hour),                       // evicted
		c.hit(c.key("user100", "pw"), now, time.Hour),                      // kept
		c.hit(c.key(fmt.Sprint("user", n-1), "pw"), now, time.Hour),        // newest: kept
		c.hit(c.key(fmt.Sprint("user", n-1), "pw"), now, time.Millisecond), // too old for a shorter TTL
		c.hit(c.key(fmt.Sprint("user", n-2), "pw"), t0.Add(-time.Hour), 1), // clock went backwards: miss
	}
	if diff := cmp.Diff([]any{cacheSize, false, false, true, true, false, false}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// When full, expired entries go first.
	c2 := newVerifiedCache()
	for i := range cacheSize {
		c2.add(c2.key(fmt.Sprint("u", i), "pw"), t0, time.Minute)
	}
	later := t0.Add(2 * time.Minute)
	c2.add(c2.key("fresh", "pw"), later, time.Minute)
	if got := c2.len(); got != 1 {
		t.Errorf("after adding to a full cache of expired entries: len %d, want 1", got)
	}
}

func TestVerifiedCacheKey(t *testing.T) {
	c := newVerifiedCache()
	pairs := [][2]string{{"ab", "c"}, {"a", "bc"}, {"a\x00b", "c"}, {"a", "b\x00c"}, {"", "abc"}, {"abc", ""}}
	seen := map[[32]byte]int{}
	for i, p := range pairs {
		k := c.key(p[0], p[1])
		if j, dup := seen[k]; dup {
			t.Errorf("key(%q) == key(%q)", pairs[i], pairs[j])
		}
		seen[k] = i
	}
	if c.key("a", "b") != c.key("a", "b") {
		t.Error("key is not deterministic")
	}
	if newVerifiedCache().key("a", "b") == c.key("a", "b") {
		t.Error("two caches derive the same key: the per-cache secret is missing")
	}
	long := strings.Repeat("p", 1000) // beyond the stack buffer
	if c.key("u", long) == c.key("u", long[:999]) {
		t.Error("long passwords collide")
	}
}

func TestHtpasswdDummyCost(t *testing.T) {
	h5, err := HashPassword("pw", 5)
	if err != nil {
		t.Fatal(err)
	}
	h4 := mustHash(t, "pw")
	costOf := func(text string) int {
		st, err := parseHtpasswd(strings.NewReader(text), "")
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		c, err := checkHash(string(st.dummy))
		if err != nil {
			t.Fatalf("dummy hash %q is invalid: %v", st.dummy, err)
		}
		if c <= 5 { // cheap enough to run
			if err := bcrypt.CompareHashAndPassword(st.dummy, []byte("pw")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
				t.Errorf("dummy compare: got %v, want a mismatch", err)
			}
		}
		return c
	}
	got := []int{
		costOf("a:" + h4 + "\nb:" + h4 + "\nc:" + h5 + "\n"),
		costOf("a:" + h5 + "\nb:" + h5 + "\nc:" + h4 + "\n"),
		costOf("a:" + h4 + "\nb:" + h5 + "\n"), // tie: the higher
		costOf(""),
	}
	if diff := cmp.Diff([]int{4, 5, 5, bcrypt.DefaultCost}, got); diff != "" {
		t.Errorf("dummy costs (-want +got):\n%s", diff)
	}
}

func TestHtpasswdBackendError(t *testing.T) {
	h, _, _ := newTestHtpasswd(t, map[string]string{"alice": "pw"}, 1)
	boom := errors.New("blowfish exploded")
	h.compare = func(hash, password []byte) error { return boom }
	err := h.CheckPassword(context.Background(), "alice", "s3cret-pw")
	if !errors.Is(err, boom) || errors.Is(err, ErrBadCredentials) {
		t.Fatalf("got %v, want the backend error and not ErrBadCredentials", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("error %q must name the user and not the password", err)
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHtpasswdContextWhileWaiting(t *testing.T) {
	h, _, _ := newTestHtpasswd(t, map[string]string{"alice": "pw"}, 1)
	// Take the only slot.
	if err := h.lim.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.lim.release()

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		ctx, cancel := tc.ctx()
		done := make(chan error, 1)
		go func() { done <- h.CheckPassword(ctx, "alice", "pw") }()
		if tc.want == context.Canceled {
			waitFor(t, "CheckPassword to wait for a slot", func() bool { return h.lim.waiting.Load() == 1 })
			cancel()
		} // else the deadline passes, whether before or while CheckPassword waits
		select {
		case err := <-done:
			if err != tc.want {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: CheckPassword did not return after its context ended", tc.name)
		}
		cancel()
	}

	// Already cancelled: no waiting at all, even with a free slot.
	h.lim.release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := h.lim.acquired.Load()
	if err := h.CheckPassword(ctx, "alice", "pw"); err != context.Canceled {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
	if h.lim.acquired.Load() != before {
		t.Error("bcrypt ran for a cancelled context")
	}
	if err := h.lim.acquire(context.Background()); err != nil { // for the deferred release
		t.Fatal(err)
	}
}

func TestHtpasswdConcurrencyBounded(t *testing.T) {
	const slots, callers = 2, 8
	h, _, _ := newTestHtpasswd(t, map[string]string{"alice": "pw"}, slots)
	h.SetCacheTTL(0)
	var inside, maxInside atomic.Int64
	gate := make(chan struct{})
	h.compare = func(hash, password []byte) error {
		n := inside.Add(1)
		for {
			m := maxInside.Load()
			if n <= m || maxInside.CompareAndSwap(m, n) {
				break
			}
		}
		<-gate
		inside.Add(-1)
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	var wg sync.WaitGroup
	results := make([]string, callers)
	for i := range callers {
		wg.Go(func() { results[i] = outcome(h.CheckPassword(context.Background(), "alice", "pw")) })
	}
	waitFor(t, "the slots to fill and the rest to queue", func() bool {
		return inside.Load() == slots && h.lim.waiting.Load() == callers-slots
	})
	close(gate)
	wg.Wait()
	want := make([]string, callers)
	for i := range want {
		want[i] = "ok"
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := maxInside.Load(); got != slots {
		t.Errorf("%d verifications ran at once, want at most (and here exactly) %d", got, slots)
	}
}

func TestHtpasswdConcurrent(t *testing.T) {
	users := map[string]string{"alice": "a-pw", "bob": "b-pw", "zoë": "z-pw"}
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, htpasswdText(t, users))
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"alice", "bob", "zoë", "mallory"}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 12 {
				user := names[(g+i)%len(names)]
				pw := users[user]
				wantOK := pw != "" && i%3 != 0
				if i%3 == 0 {
					pw += "x"
				}
				err := h.CheckPassword(context.Background(), user, pw)
				if (err == nil) != wantOK || (err != nil && !errors.Is(err, ErrBadCredentials)) {
					wrong.Add(1)
				}
				_ = h.Len()
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			if err := h.Reload(); err != nil {
				wrong.Add(1)
			}
			h.SetCacheTTL(time.Duration(i%2) * time.Minute)
		}
	})
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d wrong answers under concurrency", n)
	}
}

func TestHashPassword(t *testing.T) {
	long := strings.Repeat("p", 73)
	tests := []struct {
		name, password string
		cost           int
		wantErr        bool
	}{
		{"min cost", "pw", bcrypt.MinCost, false},
		{"unicode", "pässwörd 秘密", bcrypt.MinCost, false},
		{"72 bytes", long[:72], bcrypt.MinCost, false},
		{"cost too low", "pw", bcrypt.MinCost - 1, true},
		{"cost too high", "pw", MaxHtpasswdCost + 1, true},
		{"empty password", "", bcrypt.MinCost, true},
		{"73 bytes", long, bcrypt.MinCost, true},
	}
	type res struct {
		Err      bool
		Prefix   string
		Verifies bool
	}
	got, want := map[string]res{}, map[string]res{}
	for _, tt := range tests {
		w := res{Err: tt.wantErr}
		if !tt.wantErr {
			w.Prefix, w.Verifies = fmt.Sprintf("$2y$%02d$", tt.cost), true
		}
		want[tt.name] = w
		h, err := HashPassword(tt.password, tt.cost)
		if err != nil {
			if tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Errorf("%s: error reveals the password", tt.name)
			}
			got[tt.name] = res{Err: true}
			continue
		}
		_, herr := checkHash(h)
		p, perr := ParseHtpasswd(strings.NewReader("u:" + h))
		verifies := herr == nil && perr == nil && p.CheckPassword(context.Background(), "u", tt.password) == nil
		got[tt.name] = res{Prefix: h[:7], Verifies: verifies}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := HashPassword(long, bcrypt.MinCost); !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		t.Errorf("73 bytes: got %v, want bcrypt.ErrPasswordTooLong", err)
	}
	a, _ := HashPassword("same", bcrypt.MinCost)
	b, _ := HashPassword("same", bcrypt.MinCost)
	if a == b || bytes.Equal([]byte(a[7:29]), []byte(b[7:29])) {
		t.Error("two hashes of the same password share their salt")
	}
}

func TestHtpasswdErrorString(t *testing.T) {
	got := []string{
		(&HtpasswdError{Path: "/etc/u", Line: 3, User: "bob", Err: ErrDuplicateUser}).Error(),
		(&HtpasswdError{Line: 7, Err: ErrMalformedLine}).Error(),
		(&HtpasswdError{Line: 1}).Error(),
	}
	want := []string{
		`auth: htpasswd /etc/u:3: user "bob": duplicate user`,
		`auth: htpasswd line 7: malformed line`,
		`auth: htpasswd line 1: invalid line`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
