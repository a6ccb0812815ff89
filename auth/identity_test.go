package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIdentityString(t *testing.T) {
	tests := []struct {
		name string
		id   *Identity
		want string
	}{
		{"nil", nil, "none"},
		{"zero", &Identity{}, "none"},
		{"none", &Identity{Method: MethodNone}, "none"},
		{"username", &Identity{Method: MethodUsername, User: "alice"}, "username%alice"},
		{"pam", &Identity{Method: MethodPAM, User: "bob"}, "pam.username%bob"},
		{"ident", &Identity{Method: MethodIdent, User: "dtuser"}, "rfc931%dtuser"},
		{"unicode", &Identity{Method: MethodUsername, User: "zoë"}, "username%zoë"},
		{"method without user", &Identity{Method: MethodUsername}, "username"},
	}
	got := map[string]string{}
	want := map[string]string{}
	for _, tt := range tests {
		got[tt.name] = tt.id.String()
		want[tt.name] = tt.want
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Identity.String mismatch (-want +got):\n%s", diff)
	}
}

func TestMethodString(t *testing.T) {
	got := []string{Method("").String(), MethodNone.String(), MethodUsername.String(), MethodPAM.String(), MethodIdent.String()}
	want := []string{"none", "none", "username", "pam.username", "rfc931"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Method.String mismatch (-want +got):\n%s", diff)
	}
}

func TestPasswordCheckerFunc(t *testing.T) {
	var gotUser, gotPass string
	f := PasswordCheckerFunc(func(_ context.Context, user, password string) error {
		gotUser, gotPass = user, password
		if password == "pw" {
			return nil
		}
		return ErrBadCredentials
	})
	var pc PasswordChecker = f
	if err := pc.CheckPassword(context.Background(), "u", "pw"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := pc.CheckPassword(context.Background(), "u2", "nope"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password: got %v, want ErrBadCredentials", err)
	}
	if diff := cmp.Diff([]string{"u2", "nope"}, []string{gotUser, gotPass}); diff != "" {
		t.Errorf("arguments not passed through (-want +got):\n%s", diff)
	}
}

// outcome summarises a CheckPassword result for table comparisons.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrBadCredentials):
		return "bad"
	default:
		return "error: " + err.Error()
	}
}
