package auth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/virgilproxy/socks/auth"
	"golang.org/x/crypto/bcrypt"
)

func BenchmarkUsersCheckPassword(b *testing.B) {
	users := auth.Users{}
	for i := range 1000 {
		users[fmt.Sprint("user", i)] = fmt.Sprint("password-", i)
	}
	ctx := context.Background()
	for _, bc := range []struct{ name, user, password string }{
		{"right", "user500", "password-500"},
		{"wrong", "user500", "password-501"},
		{"unknown", "mallory", "password-500"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = users.CheckPassword(ctx, bc.user, bc.password)
			}
		})
	}
}

func newBenchHtpasswd(b *testing.B, cost int) *auth.Htpasswd {
	b.Helper()
	hash, err := auth.HashPassword("s3cret", cost)
	if err != nil {
		b.Fatal(err)
	}
	h, err := auth.ParseHtpasswd(strings.NewReader("alice:" + hash + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkHtpasswdCached is a repeated right login at the default cost,
// answered from the cache after the first.
func BenchmarkHtpasswdCached(b *testing.B) {
	h := newBenchHtpasswd(b, bcrypt.DefaultCost)
	ctx := context.Background()
	if err := h.CheckPassword(ctx, "alice", "s3cret"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.CheckPassword(ctx, "alice", "s3cret"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHtpasswdBcrypt is what a login costs without the cache (a wrong
// password is never cached).
func BenchmarkHtpasswdBcrypt(b *testing.B) {
	for _, cost := range []int{bcrypt.MinCost, bcrypt.DefaultCost} {
		b.Run(fmt.Sprint("cost", cost), func(b *testing.B) {
			h := newBenchHtpasswd(b, cost)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_ = h.CheckPassword(ctx, "alice", "wrong")
			}
		})
	}
}
