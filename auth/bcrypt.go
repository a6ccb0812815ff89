package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// MaxHtpasswdCost is the highest bcrypt cost [Htpasswd] accepts and
// [HashPassword] produces: Apache's htpasswd stops there too. One verification
// at cost 17 already takes several seconds of CPU.
const MaxHtpasswdCost = 17

// Defaults of the verification cache of an [Htpasswd].
const (
	DefaultCacheTTL = time.Minute // how long a successful verification is remembered
	cacheSize       = 1024        // at most this many remembered verifications
)

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// limiter bounds the number of concurrent bcrypt verifications.
type limiter struct {
	slots    chan struct{}
	waiting  atomic.Int64 // callers blocked in acquire (observed by tests)
	acquired atomic.Int64 // total successful acquisitions (observed by tests)
}

func newLimiter(n int) *limiter {
	if n < 1 {
		n = 1
	}
	return &limiter{slots: make(chan struct{}, n)}
}

// bcryptLimiter is shared by every Htpasswd: bcrypt's CPU cost is a property
// of the process, not of one password file.
var bcryptLimiter = newLimiter(runtime.GOMAXPROCS(0) * 2)

// acquire takes a slot, waiting until one is free or ctx ends. It returns
// ctx.Err() when ctx ended first (or had already ended).
func (l *limiter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.slots <- struct{}{}:
		l.acquired.Add(1)
		return nil
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil { // both were ready: prefer the caller's end
		<-l.slots
		return err
	}
	l.acquired.Add(1)
	return nil
}

func (l *limiter) release() { <-l.slots }

// verifiedCache remembers successful verifications for a short time. Keys are
// SHA-256 digests; the cache never holds a password or a user name.
type verifiedCache struct {
	secret  [32]byte // random per cache, mixed into every key
	mu      sync.Mutex
	entries map[[32]byte]time.Time // key -> time of the verification
}

func newVerifiedCache() *verifiedCache {
	c := &verifiedCache{entries: make(map[[32]byte]time.Time)}
	_, _ = rand.Read(c.secret[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return c
}

// key derives the cache key of a user name and password.
func (c *verifiedCache) key(user, password string) [32]byte {
	var buf [640]byte
	b := append(buf[:0], c.secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(user)))
	b = append(b, user...)
	b = append(b, password...)
	sum := sha256.Sum256(b)
	clear(b) // do not leave the password on the stack longer than needed
	return sum
}

// hit reports whether key was stored less than ttl before now.
func (c *verifiedCache) hit(key [32]byte, now time.Time, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.entries[key]
	if !ok {
		return false
	}
	if age := now.Sub(at); age < 0 || age >= ttl {
		delete(c.entries, key)
		return false
	}
	return true
}

// add stores key as verified at now. When the cache is full it first drops
// expired entries, then the oldest one.
func (c *verifiedCache) add(key [32]byte, now time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= cacheSize {
		var oldestKey [32]byte
		var oldest time.Time
		first := true
		for k, at := range c.entries {
			if age := now.Sub(at); age < 0 || age >= ttl {
				delete(c.entries, k)
				continue
			}
			if first || at.Before(oldest) {
				oldestKey, oldest, first = k, at, false
			}
		}
		if len(c.entries) >= cacheSize {
			delete(c.entries, oldestKey)
		}
	}
	c.entries[key] = now
}

func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// HashPassword returns the bcrypt hash of password at the given cost, in the
// form Apache's "htpasswd -B" writes ($2y$...), ready to follow "user:" on an
// htpasswd line. cost must be between bcrypt.MinCost (4) and
// [MaxHtpasswdCost]; bcrypt.DefaultCost (10) is a sound choice. Empty
// passwords and passwords longer than 72 bytes (bcrypt would ignore the rest)
// are refused. The error never contains the password.
func HashPassword(password string, cost int) (string, error) {
	if password == "" {
		return "", errors.New("auth: hash password: empty password")
	}
	if cost < bcrypt.MinCost || cost > MaxHtpasswdCost {
		return "", fmt.Errorf("auth: hash password: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, MaxHtpasswdCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	s := string(h)
	if rest, ok := strings.CutPrefix(s, "$2a$"); ok {
		s = "$2y$" + rest // the same algorithm; $2y$ is what htpasswd writes
	}
	return s, nil
}

// dummyHash returns a syntactically valid bcrypt hash of the given cost that
// no password matches (its 31 hash characters are random), for unknown users.
func dummyHash(cost int) []byte {
	var r [53]byte
	_, _ = rand.Read(r[:])
	h := fmt.Appendf(make([]byte, 0, 60), "$2y$%02d$", cost)
	for _, b := range r {
		h = append(h, bcryptAlphabet[int(b)%len(bcryptAlphabet)])
	}
	return h
}

// checkHash validates a bcrypt hash as found in an htpasswd file and returns
// its cost. Its errors describe the format, never the hash itself.
func checkHash(h string) (int, error) {
	switch {
	case h == "":
		return 0, fmt.Errorf("%w: empty hash", ErrUnsupportedHash)
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		// checked below
	default:
		return 0, fmt.Errorf("%w: %s; only bcrypt ($2y$, $2a$, $2b$) is supported, as written by htpasswd -B", ErrUnsupportedHash, hashKind(h))
	}
	if len(h) != 60 || h[6] != '$' || h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return 0, fmt.Errorf("%w: malformed bcrypt hash (want $2y$NN$ and 53 characters)", ErrUnsupportedHash)
	}
	for i := 7; i < len(h); i++ {
		if strings.IndexByte(bcryptAlphabet, h[i]) < 0 {
			return 0, fmt.Errorf("%w: malformed bcrypt hash (character outside bcrypt's base64 alphabet)", ErrUnsupportedHash)
		}
	}
	cost := int(h[4]-'0')*10 + int(h[5]-'0')
	if cost < bcrypt.MinCost || cost > MaxHtpasswdCost {
		return 0, fmt.Errorf("%w: bcrypt cost %d outside %d..%d", ErrUnsupportedHash, cost, bcrypt.MinCost, MaxHtpasswdCost)
	}
	if c, err := bcrypt.Cost([]byte(h)); err != nil || c != cost {
		return 0, fmt.Errorf("%w: malformed bcrypt hash", ErrUnsupportedHash)
	}
	return cost, nil
}

// hashKind names the scheme of a hash htpasswd (or a system crypt) may have
// written, from its prefix alone.
func hashKind(h string) string {
	prefixes := []struct{ prefix, kind string }{
		{"{SHA}", "{SHA} (unsalted SHA-1)"},
		{"$apr1$", "$apr1$ (Apache MD5)"},
		{"$1$", "$1$ (MD5-crypt)"},
		{"$5$", "$5$ (SHA-256-crypt)"},
		{"$6$", "$6$ (SHA-512-crypt)"},
		{"$y$", "$y$ (yescrypt)"},
		{"$argon2", "argon2"},
		{"$2x$", "$2x$ (buggy pre-2011 bcrypt)"},
		{"$2$", "$2$ (original bcrypt)"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(h, p.prefix) {
			return p.kind
		}
	}
	if len(h) == 13 && strings.Trim(h, bcryptAlphabet) == "" {
		return "crypt(3) DES"
	}
	return "unknown hash format (a plain-text password?)"
}
