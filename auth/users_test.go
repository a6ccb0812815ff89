package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// credCase is one CheckPassword call and its expected outcome.
type credCase struct {
	name, user, password, want string
}

// credCases are shared by the Users and Htpasswd tests; the store holds
// credUsers.
var credUsers = map[string]string{
	"alice": "correct horse",
	"zoë":   "pässwörd",
	"用户":    "秘密",
	"bob":   "b",
}

var credCases = []credCase{
	{"right", "alice", "correct horse", "ok"},
	{"wrong", "alice", "correct horsf", "bad"},
	{"prefix of the password", "alice", "correct", "bad"},
	{"password plus a byte", "alice", "correct horse ", "bad"},
	{"another user's password", "alice", "b", "bad"},
	{"one-byte password", "bob", "b", "ok"},
	{"unknown user", "mallory", "correct horse", "bad"},
	{"user name case differs", "Alice", "correct horse", "bad"},
	{"empty password", "alice", "", "bad"},
	{"empty user", "", "correct horse", "bad"},
	{"unicode user right", "zoë", "pässwörd", "ok"},
	{"unicode user wrong", "zoë", "passwörd", "bad"},
	{"unicode user other normalisation", "zoe\u0308", "pässwörd", "bad"},
	{"cjk user right", "用户", "秘密", "ok"},
	{"cjk user wrong", "用户", "秘", "bad"},
	{"long password", "alice", strings.Repeat("x", 255), "bad"},
}

func runCredCases(t *testing.T, pc PasswordChecker) {
	t.Helper()
	got := map[string]string{}
	want := map[string]string{}
	for _, c := range credCases {
		got[c.name] = outcome(pc.CheckPassword(context.Background(), c.user, c.password))
		want[c.name] = c.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CheckPassword outcomes (-want +got):\n%s", diff)
	}
}

func TestUsersCheckPassword(t *testing.T) {
	u := Users{}
	for k, v := range credUsers {
		u[k] = v
	}
	runCredCases(t, u)
}

func TestUsersEmptyStoredPassword(t *testing.T) {
	u := Users{"guest": ""}
	got := []string{
		outcome(u.CheckPassword(context.Background(), "guest", "")),
		outcome(u.CheckPassword(context.Background(), "guest", "x")),
		outcome(u.CheckPassword(context.Background(), "nobody", "")),
	}
	if diff := cmp.Diff([]string{"bad", "bad", "bad"}, got); diff != "" {
		t.Errorf("empty stored password (-want +got):\n%s", diff)
	}
}

func TestUsersNilAndDummy(t *testing.T) {
	var u Users // nil map: every login fails
	got := []string{
		outcome(u.CheckPassword(context.Background(), "alice", "x")),
		// The dummy itself is not a way in for an unknown user.
		outcome(u.CheckPassword(context.Background(), "mallory", usersDummy)),
		outcome(Users{"a": "x"}.CheckPassword(context.Background(), "mallory", usersDummy)),
	}
	if diff := cmp.Diff([]string{"bad", "bad", "bad"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUsersIgnoresContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Users{"a": "x"}).CheckPassword(ctx, "a", "x"); err != nil {
		t.Errorf("Users must not block or fail on a cancelled context: %v", err)
	}
}
