package auth

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// Hashes of "pw" and "pässwörd" at cost 4, for seeds.
const (
	seedHashPW     = "$2y$04$CDeeJ5FLfennmaC6.6PvceGncD6paqXylJTpsPSDsRFTpQrxAEzt2"
	seedHashUmlaut = "$2y$04$nJdKS0HK1akz0EyyYakT3.pX76ysBH8woW34m92JpRWVpb5pkpSkq"
)

func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("alice:" + seedHashPW + "\n"))
	f.Add([]byte("# users\n\nalice:" + seedHashPW + "\r\n  zoë:" + seedHashUmlaut + "  \n"))
	f.Add([]byte("alice:" + seedHashPW + "\nalice:" + seedHashUmlaut + "\n"))
	f.Add([]byte("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"))
	f.Add([]byte("carol:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"))
	f.Add([]byte("dave:rqXexS6ZhobKA\n"))
	f.Add([]byte("erin:realm:0123456789abcdef\n"))
	f.Add([]byte("no colon here\n"))
	f.Add([]byte(":" + seedHashPW))
	f.Add([]byte("jo:$2y$18$" + seedHashPW[7:]))
	f.Add([]byte("a\x00b:" + seedHashPW))

	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseHtpasswd(bytes.NewReader(data), "")
		lines := strings.Split(string(data), "\n")
		if err != nil {
			if !errors.Is(err, ErrInvalidHtpasswd) {
				t.Fatalf("error %v does not wrap ErrInvalidHtpasswd", err)
			}
			var he *HtpasswdError
			if !errors.As(err, &he) {
				return // the size limit; cannot happen below 16 MiB, but harmless
			}
			if he.Line < 1 || he.Line > len(lines) {
				t.Fatalf("error names line %d of %d", he.Line, len(lines))
			}
			if len(he.User) > maxUserLen {
				t.Fatalf("error carries a %d-byte user name", len(he.User))
			}
			// The offending line's hash never appears in the error (the user
			// name, which is quoted in it, aside).
			text := strings.TrimSpace(strings.TrimSuffix(lines[he.Line-1], "\r"))
			if _, hash, ok := strings.Cut(text, ":"); ok && len(hash) >= 24 && strings.Trim(hash, bcryptAlphabet+"$") == "" {
				msg := strings.ReplaceAll(err.Error(), strconv.Quote(he.User), "")
				if strings.Contains(msg, hash) {
					t.Fatalf("error %q reveals the hash %q", err, hash)
				}
			}
			return
		}

		// Every non-blank, non-comment line became exactly one user with its hash.
		want := map[string]string{}
		n := 0
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' {
				continue
			}
			user, hash, ok := strings.Cut(l, ":")
			if !ok {
				t.Fatalf("line %q without ':' was accepted", l)
			}
			want[user] = hash
			n++
		}
		h := &Htpasswd{}
		h.state.Store(st)
		if h.Len() != n || len(want) != n {
			t.Fatalf("Len() = %d, %d distinct users, want both %d (the user lines)", h.Len(), len(want), n)
		}
		// Every stored hash is one CheckPassword can use; no lookup succeeds
		// without bcrypt (a cancelled context stops before it); and a wrong
		// password does not verify (real bcrypt, for one cheap hash per input
		// only: it is slow under the fuzzer's instrumentation).
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		bcrypted := false
		for user, hash := range want {
			if got := string(st.users[user]); got != hash {
				t.Fatalf("user %q: stored hash %q, want %q", user, got, hash)
			}
			if _, err := checkHash(hash); err != nil {
				t.Fatalf("user %q: accepted an invalid hash: %v", user, err)
			}
			if err := h.CheckPassword(ctx, user, "\x00not the password"); err != context.Canceled {
				t.Fatalf("user %q: CheckPassword with a cancelled context gave %v", user, err)
			}
			if !bcrypted && hash[3:7] == "$04$" {
				bcrypted = true
				if err := h.CheckPassword(context.Background(), user, "\x00not the password"); !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("user %q: a wrong password gave %v", user, err)
				}
			}
		}
	})
}
