package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
)

// Users is an in-memory password store: user name -> plain password.
//
// Passwords are compared in constant time (SHA-256 digests of both sides, so
// the stored password's length does not leak either), and an unknown user is
// compared against a dummy, costing the same as a wrong password. An empty
// password never verifies. Users is safe for concurrent use as long as the map
// is not modified.
type Users map[string]string

// usersDummy is what an unknown user's password is compared against.
const usersDummy = "\x00virgil: no such user\x00"

// CheckPassword reports whether password is user's password: nil if so, an
// error wrapping [ErrBadCredentials] if not. It does not block and ignores ctx.
func (u Users) CheckPassword(_ context.Context, user, password string) error {
	stored, known := u[user]
	if !known {
		stored = usersDummy
	}
	got := sha256.Sum256([]byte(password))
	want := sha256.Sum256([]byte(stored))
	same := subtle.ConstantTimeCompare(got[:], want[:])
	if same == 1 && known && password != "" {
		return nil
	}
	return ErrBadCredentials
}
