package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/virgilproxy/socks/auth"
	"golang.org/x/crypto/bcrypt"
)

func ExampleUsers() {
	users := auth.Users{"alice": "correct horse battery staple"}
	ctx := context.Background()

	err := users.CheckPassword(ctx, "alice", "correct horse battery staple")
	fmt.Println("right password:", err)

	err = users.CheckPassword(ctx, "alice", "wrong")
	fmt.Println("wrong password:", errors.Is(err, auth.ErrBadCredentials))

	err = users.CheckPassword(ctx, "mallory", "correct horse battery staple")
	fmt.Println("unknown user:", errors.Is(err, auth.ErrBadCredentials))

	id := &auth.Identity{Method: auth.MethodUsername, User: "alice"}
	fmt.Println("identity:", id)
	// Output:
	// right password: <nil>
	// wrong password: true
	// unknown user: true
	// identity: username%alice
}

func ExampleLoadHtpasswd() {
	dir, err := os.MkdirTemp("", "htpasswd")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// What "htpasswd -B" writes. Use bcrypt.DefaultCost or more for real
	// users; the minimum keeps the example fast.
	hash, err := auth.HashPassword("s3cret", bcrypt.MinCost)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "users.htpasswd")
	if err := os.WriteFile(path, []byte("# proxy users\nalice:"+hash+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}

	users, err := auth.LoadHtpasswd(path)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	fmt.Println("users:", users.Len())
	fmt.Println("alice, right password:", users.CheckPassword(ctx, "alice", "s3cret"))
	err = users.CheckPassword(ctx, "alice", "guess")
	fmt.Println("alice, wrong password:", errors.Is(err, auth.ErrBadCredentials))

	// Formats other than bcrypt are refused, naming the line and the user.
	if err := os.WriteFile(path, []byte("alice:"+hash+"\nbob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	err = users.Reload()
	var he *auth.HtpasswdError
	if errors.As(err, &he) {
		fmt.Printf("reload refused: line %d, user %q, unsupported hash: %v\n", he.Line, he.User, errors.Is(err, auth.ErrUnsupportedHash))
	}
	fmt.Println("still serving the old contents:", users.CheckPassword(ctx, "alice", "s3cret"))
	// Output:
	// users: 1
	// alice, right password: <nil>
	// alice, wrong password: true
	// reload refused: line 2, user "bob", unsupported hash: true
	// still serving the old contents: <nil>
}

func ExampleIdentity_String() {
	var anonymous *auth.Identity
	fmt.Println(anonymous)
	fmt.Println(&auth.Identity{Method: auth.MethodNone})
	fmt.Println(&auth.Identity{Method: auth.MethodIdent, User: "dtuser"})
	// Output:
	// none
	// none
	// rfc931%dtuser
}

func ExampleHashPassword() {
	hash, err := auth.HashPassword("s3cret", bcrypt.MinCost)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice:" + hash[:7] + "...") // the salt differs every time
	// Output:
	// alice:$2y$04$...
}
