// Package auth holds client identities and the ways to establish them by user
// name and password. It knows nothing of any SOCKS or HTTP wire format: codecs
// parse RFC 1929 sub-negotiations and Proxy-Authorization headers, and hand the
// plain user name and password to a [PasswordChecker] from this package.
//
// # Identities
//
// An [Identity] records how a client proved who it is ([Method], named in
// Dante's vocabulary: "none", "username", "pam.username", "rfc931") and the
// user name it proved. Its String method prints it the way Dante's logs do,
// method%user, for example "username%alice".
//
// # Password stores
//
// [Users] is an in-memory map of plain passwords, for embedding and tests. It
// compares SHA-256 digests of the two passwords in constant time, so neither
// the content nor the length of the stored password leaks through timing, and
// an unknown user is compared against a dummy so it costs the same as a wrong
// password.
//
// [Htpasswd] reads an Apache htpasswd file of bcrypt hashes, the format that
// "htpasswd -B" writes. Only bcrypt ($2y$, $2a$, $2b$) is accepted: the other
// formats htpasswd can write ({SHA}, $apr1$, crypt) are fast, unsalted or
// truncating hashes, and a file that holds one is refused at load time with the
// line number and the user name, never the hash. Costs above 17 (Apache's own
// upper bound) are refused too: one verification would take seconds to hours.
//
// # Cost of bcrypt, and what Htpasswd does about it
//
// bcrypt is slow by design (about 50-100 ms of one CPU at cost 10). Two
// mechanisms keep that from hurting the proxy:
//
//   - A process-wide limit on concurrent bcrypt verifications,
//     runtime.GOMAXPROCS(0)*2 at package initialisation, shared by every
//     Htpasswd. A flood of bad logins queues behind it instead of taking every
//     CPU from the relays. A caller waiting for a slot gives up when its
//     context ends, and CheckPassword then returns ctx.Err(). A verification
//     that has started is not interrupted.
//   - A small cache of successful verifications (at most 1024 entries, one
//     minute by default, see [Htpasswd.SetCacheTTL]), so repeated logins by the
//     same client (one connection per curl run, many per browser) do not pay
//     bcrypt each time. Entries are keyed by SHA-256 over a random per-load
//     secret, the user name (length-prefixed, so user and password cannot be
//     shifted into each other) and the password. Only successes are cached;
//     wrong passwords always pay the full cost. The trade-off: a cache hit
//     means that exactly this user name and password were verified by bcrypt
//     within the TTL, so for that long the cache holds a fast hash of a valid
//     password in memory (a memory dump would expose it to a fast offline
//     guess, which bcrypt exists to prevent), and a password changed in the
//     file is still accepted until [Htpasswd.Reload] runs. Reload empties the
//     cache. Set the TTL to zero to turn the cache off.
//
// An unknown user is verified against a dummy bcrypt hash of the cost that
// most users of the file have, so the time a login takes does not reveal which
// user names exist (users whose costs differ from the majority remain
// distinguishable; keep one cost per file).
//
// # Empty passwords and long passwords
//
// An empty password or user name never verifies, in either store, even when a
// store holds an empty password: RFC 1929 cannot carry one, and an empty entry
// is far more often a mistake than a policy. bcrypt uses only the first 72
// bytes of a password (as every bcrypt implementation does); [HashPassword]
// refuses longer passwords so a tool cannot silently create such an entry.
//
// # Secrets
//
// Passwords never appear in errors, and neither do hashes. Errors for wrong
// credentials wrap [ErrBadCredentials], whether the user is unknown or the
// password wrong; any other error means the store itself failed.
package auth
