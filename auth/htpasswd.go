package auth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Limits on what an htpasswd file may hold.
const (
	maxHtpasswdSize = 16 << 20 // bytes in the whole file
	maxHtpasswdLine = 4096     // bytes in one line
	maxUserLen      = 255      // bytes in a user name, as in Apache's htpasswd and RFC 1929
)

// Errors of htpasswd files. Every load error wraps ErrInvalidHtpasswd; those
// about one line are an *HtpasswdError that also wraps ErrUnsupportedHash,
// ErrDuplicateUser or ErrMalformedLine.
var (
	ErrInvalidHtpasswd = errors.New("auth: invalid htpasswd file")
	ErrUnsupportedHash = errors.New("unsupported password hash")
	ErrDuplicateUser   = errors.New("duplicate user")
	ErrMalformedLine   = errors.New("malformed line")
)

// errNoFile is returned by Reload on an Htpasswd that was not loaded from a file.
var errNoFile = errors.New("auth: htpasswd: reload: not loaded from a file")

// HtpasswdError is an error in one line of an htpasswd file. It names the
// line and the user, never the hash or password.
type HtpasswdError struct {
	Path string // file name; empty for ParseHtpasswd
	Line int    // 1-based line number
	User string // the line's user name; empty when the line has none
	Err  error  // what is wrong: wraps ErrUnsupportedHash, ErrDuplicateUser or ErrMalformedLine
}

// Error describes the error, for example
// `auth: htpasswd users.htpasswd:3: user "bob": unsupported password hash: {SHA} (unsalted SHA-1); ...`.
func (e *HtpasswdError) Error() string {
	var b strings.Builder
	b.WriteString("auth: htpasswd ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteByte(':')
	} else {
		b.WriteString("line ")
	}
	b.WriteString(strconv.Itoa(e.Line))
	if e.User != "" {
		b.WriteString(": user ")
		b.WriteString(strconv.Quote(e.User))
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid line")
	}
	return b.String()
}

// Unwrap returns ErrInvalidHtpasswd and e.Err.
func (e *HtpasswdError) Unwrap() []error { return []error{ErrInvalidHtpasswd, e.Err} }

// Htpasswd is a password store read from an Apache htpasswd file of bcrypt
// hashes ($2y$, $2a$, $2b$), as "htpasswd -B" writes it. Each line is
// "user:hash"; surrounding white space is ignored, and blank lines and lines
// starting with # are skipped. Any other hash format ({SHA}, $apr1$, crypt,
// plain text) is a load error, as is a duplicate user, a user name that is
// longer than 255 bytes, not UTF-8 or holds control characters, and a bcrypt
// cost above [MaxHtpasswdCost].
//
// Verifications share a process-wide bound on concurrent bcrypt work, and
// successes are cached for [DefaultCacheTTL]; see the package documentation
// for both and their trade-offs.
//
// An Htpasswd is safe for concurrent use, including CheckPassword concurrently
// with Reload. The zero value is an empty store that no one can log in to.
type Htpasswd struct {
	path     string
	reloadMu sync.Mutex // serialises Reload
	state    atomic.Pointer[htState]
	ttl      atomic.Int64 // cache TTL in nanoseconds, offset so that the zero value means DefaultCacheTTL

	// Test hooks; nil means the real thing.
	lim     *limiter
	now     func() time.Time
	compare func(hash, password []byte) error
}

// htState is one loaded version of the file. Reload replaces it whole, which
// also replaces (so empties) the verification cache.
type htState struct {
	users map[string][]byte // user -> bcrypt hash
	dummy []byte            // compared against for unknown users
	cache *verifiedCache
}

var emptyState = &htState{users: map[string][]byte{}, dummy: dummyHash(bcrypt.DefaultCost), cache: newVerifiedCache()}

// LoadHtpasswd reads the htpasswd file at path. [Htpasswd.Reload] reads it
// again.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	st, err := loadHtpasswdFile(path)
	if err != nil {
		return nil, err
	}
	h := &Htpasswd{path: path}
	h.state.Store(st)
	return h, nil
}

// ParseHtpasswd reads an htpasswd file from r. The result cannot be reloaded.
func ParseHtpasswd(r io.Reader) (*Htpasswd, error) {
	st, err := parseHtpasswd(r, "")
	if err != nil {
		return nil, err
	}
	h := &Htpasswd{}
	h.state.Store(st)
	return h, nil
}

func loadHtpasswdFile(path string) (*htState, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: htpasswd: %w", err)
	}
	defer f.Close()
	return parseHtpasswd(f, path)
}

// Reload reads the file h was loaded from again and, if it is valid, replaces
// the users and empties the verification cache. On error h keeps its old
// contents (and cache). Reload is safe concurrently with CheckPassword; a
// verification that started before Reload finishes against the old contents.
func (h *Htpasswd) Reload() error {
	if h == nil || h.path == "" {
		return errNoFile
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	st, err := loadHtpasswdFile(h.path)
	if err != nil {
		return err
	}
	h.state.Store(st)
	return nil
}

// Len returns the number of users.
func (h *Htpasswd) Len() int { return len(h.load().users) }

// SetCacheTTL sets how long a successful verification is remembered
// (default [DefaultCacheTTL]); zero or less turns the cache off, at once.
// It is safe to call at any time.
func (h *Htpasswd) SetCacheTTL(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.ttl.Store(int64(d - DefaultCacheTTL))
}

func (h *Htpasswd) cacheTTL() time.Duration {
	if h == nil {
		return 0
	}
	return time.Duration(h.ttl.Load()) + DefaultCacheTTL
}

func (h *Htpasswd) load() *htState {
	if h != nil {
		if st := h.state.Load(); st != nil {
			return st
		}
	}
	return emptyState
}

// CheckPassword verifies user's password with bcrypt: nil when it is right,
// an error wrapping [ErrBadCredentials] when the user is unknown or the
// password wrong. An unknown user costs a bcrypt run against a dummy hash, so
// timing does not reveal which users exist. A recent success for the same user
// and password is answered from the cache without bcrypt. Otherwise
// CheckPassword waits for one of the process-wide bcrypt slots; if ctx ends
// first it returns ctx.Err().
func (h *Htpasswd) CheckPassword(ctx context.Context, user, password string) error {
	if user == "" || password == "" {
		return ErrBadCredentials
	}
	st := h.load()
	ttl := h.cacheTTL()
	now := time.Now
	if h != nil && h.now != nil {
		now = h.now
	}
	key := st.cache.key(user, password)
	hash, known := st.users[user]
	if known && st.cache.hit(key, now(), ttl) {
		return nil
	}
	if !known {
		hash = st.dummy
	}

	lim, compare := bcryptLimiter, bcrypt.CompareHashAndPassword
	if h != nil && h.lim != nil {
		lim = h.lim
	}
	if h != nil && h.compare != nil {
		compare = h.compare
	}
	if err := lim.acquire(ctx); err != nil {
		return err
	}
	err := compare(hash, []byte(password))
	lim.release()

	switch {
	case err == nil && known:
		st.cache.add(key, now(), ttl)
		return nil
	case err == nil, errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return ErrBadCredentials
	default:
		// The hash was validated at load time, so this is not the client's
		// fault. bcrypt's errors never contain the password.
		return fmt.Errorf("auth: htpasswd: verifying user %q: %w", user, err)
	}
}

// limitedReader reads at most n bytes from r and fails beyond.
type limitedReader struct {
	r io.Reader
	n int64
}

var errTooLarge = errors.New("file too large")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Is there more? One byte tells.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// parseHtpasswd parses an htpasswd file; path only names it in errors.
func parseHtpasswd(r io.Reader, path string) (*htState, error) {
	sc := bufio.NewScanner(&limitedReader{r: r, n: maxHtpasswdSize})
	sc.Buffer(make([]byte, 0, 512), maxHtpasswdLine)
	users := make(map[string][]byte)
	firstLine := make(map[string]int)
	costs := make(map[int]int)
	lineErr := func(line int, user string, err error) error {
		return &HtpasswdError{Path: path, Line: line, User: user, Err: err}
	}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok {
			return nil, lineErr(line, "", fmt.Errorf("%w: want user:hash", ErrMalformedLine))
		}
		if err := checkUser(user); err != nil {
			return nil, lineErr(line, shortUser(user), err)
		}
		if strings.Contains(hash, ":") {
			return nil, lineErr(line, user, fmt.Errorf("%w: more than one ':' (htdigest files are not supported)", ErrMalformedLine))
		}
		cost, err := checkHash(hash)
		if err != nil {
			return nil, lineErr(line, user, err)
		}
		if first, dup := firstLine[user]; dup {
			return nil, lineErr(line, user, fmt.Errorf("%w: also on line %d", ErrDuplicateUser, first))
		}
		firstLine[user] = line
		users[user] = []byte(hash)
		costs[cost]++
	}
	if err := sc.Err(); err != nil {
		switch {
		case errors.Is(err, bufio.ErrTooLong):
			return nil, lineErr(line+1, "", fmt.Errorf("%w: longer than %d bytes", ErrMalformedLine, maxHtpasswdLine))
		case errors.Is(err, errTooLarge):
			if path != "" {
				return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalidHtpasswd, path, maxHtpasswdSize)
			}
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidHtpasswd, maxHtpasswdSize)
		default:
			if path != "" {
				return nil, fmt.Errorf("auth: htpasswd %s: %w", path, err)
			}
			return nil, fmt.Errorf("auth: htpasswd: %w", err)
		}
	}
	// The dummy's cost is the most common one (the higher on a tie), so an
	// unknown user takes as long as most known ones.
	dummyCost, most := bcrypt.DefaultCost, 0
	for c, n := range costs {
		if n > most || n == most && c > dummyCost {
			dummyCost, most = c, n
		}
	}
	return &htState{users: users, dummy: dummyHash(dummyCost), cache: newVerifiedCache()}, nil
}

// checkUser validates a user name from an htpasswd file.
func checkUser(user string) error {
	switch {
	case user == "":
		return fmt.Errorf("%w: empty user name", ErrMalformedLine)
	case len(user) > maxUserLen:
		return fmt.Errorf("%w: user name longer than %d bytes", ErrMalformedLine, maxUserLen)
	case !utf8.ValidString(user):
		return fmt.Errorf("%w: user name is not valid UTF-8", ErrMalformedLine)
	case strings.IndexFunc(user, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: control character in user name", ErrMalformedLine)
	}
	return nil
}

// shortUser cuts a user name for an error message.
func shortUser(user string) string {
	if len(user) > 64 {
		return user[:64] + "..."
	}
	return user
}
