package auth

import (
	"context"
	"errors"
)

// Method names how an identity was established, in Dante's vocabulary (the
// words of sockd.conf's socksmethod and clientmethod, and of its logs).
type Method string

// The methods this project establishes identities with.
const (
	// MethodNone: no authentication; the identity has no user name.
	MethodNone Method = "none"
	// MethodUsername: RFC 1929 username/password (or HTTP Basic) checked
	// against a password store.
	MethodUsername Method = "username"
	// MethodPAM: username/password handed to PAM.
	MethodPAM Method = "pam.username"
	// MethodIdent: the user name an ident server (RFC 1413, formerly RFC 931)
	// on the client's host reported.
	MethodIdent Method = "rfc931"
)

// String returns the method's name, "none" for the empty Method.
func (m Method) String() string {
	if m == "" {
		return string(MethodNone)
	}
	return string(m)
}

// Identity is who a client proved to be. User is empty for MethodNone.
type Identity struct {
	Method Method // how the identity was established
	User   string // the user name proved; empty for MethodNone
}

// String returns the identity as Dante writes it in its logs: the method,
// then "%" and the user name when there is one ("none", "username%alice",
// "rfc931%bob"). A nil Identity prints as "none".
func (id *Identity) String() string {
	if id == nil {
		return string(MethodNone)
	}
	if id.User == "" {
		return id.Method.String()
	}
	return id.Method.String() + "%" + id.User
}

// ErrBadCredentials is wrapped by every error a [PasswordChecker] returns for
// an unknown user or a wrong password.
var ErrBadCredentials = errors.New("auth: bad user name or password")

// PasswordChecker verifies a user name and password.
type PasswordChecker interface {
	// CheckPassword returns nil when the password is right, an error wrapping
	// ErrBadCredentials when the user is unknown or the password wrong, and
	// any other error when the backend itself failed.
	CheckPassword(ctx context.Context, user, password string) error
}

// PasswordCheckerFunc adapts a function to the [PasswordChecker] interface.
type PasswordCheckerFunc func(ctx context.Context, user, password string) error

// CheckPassword calls f(ctx, user, password).
func (f PasswordCheckerFunc) CheckPassword(ctx context.Context, user, password string) error {
	return f(ctx, user, password)
}

// Interface guards.
var (
	_ PasswordChecker = PasswordCheckerFunc(nil)
	_ PasswordChecker = Users(nil)
	_ PasswordChecker = (*Htpasswd)(nil)
)
