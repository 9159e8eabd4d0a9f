// Package auth keeps the appliance's local users, API tokens, console
// sessions and append-only audit log in a SQLite database of its own
// (appliance.db in the data directory), and decides what a role may do.
//
// Passwords are stored as argon2id hashes; API tokens and session IDs as
// SHA-256 digests (they are long random secrets, so a fast hash suffices and
// a stolen database yields nothing usable). The audit table refuses UPDATE
// and DELETE (triggers).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)
	"golang.org/x/crypto/argon2"
)

// Permissions.
const (
	PermView    = "backup.view"
	PermManage  = "backup.manage"
	PermRestore = "backup.restore"
	PermAdmin   = "admin" // users, tokens of others, deleting points, shortening retention
)

// Roles and what they may do.
var Roles = map[string][]string{
	"viewer":           {PermView},
	"builder":          {PermView, PermManage},
	"restore-operator": {PermView, PermRestore},
	"admin":            {PermView, PermManage, PermRestore, PermAdmin},
}

// Allowed reports whether a role has a permission.
func Allowed(role, perm string) bool {
	for _, p := range Roles[role] {
		if p == perm {
			return true
		}
	}
	return false
}

// Errors.
var (
	ErrBadCredentials = errors.New("wrong user name or password")
	ErrNoSuchUser     = errors.New("no such user")
	ErrBadRole        = errors.New("unknown role")
	ErrExists         = errors.New("already exists")
)

// User is a local account.
type User struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Created    time.Time `json:"created"`
	MustChange bool      `json:"must_change_password"`
}

// DB is the appliance's account database.
type DB struct {
	db   *sql.DB
	used sync.Map // token digest (string) -> time.Time of the last last_used write
}

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	role        TEXT NOT NULL,
	pw_hash     TEXT NOT NULL,
	created     INTEGER NOT NULL,
	must_change INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
	id        INTEGER PRIMARY KEY,
	user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	digest    BLOB NOT NULL UNIQUE,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL DEFAULT 0,
	last_used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
	digest  BLOB PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csrf    TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
	id     INTEGER PRIMARY KEY,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	remote TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`

// Open opens (creating) the account database at path (mode 0600).
func Open(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("accounts: %s: %w", path, err)
	}
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+sfx, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("accounts: %w", err)
		}
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// argon2id parameters for passwords (about 50 ms here).
const (
	pwTime    = 2
	pwMemory  = 19 * 1024
	pwThreads = 1
)

// HashPassword returns an encoded argon2id hash.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := argon2.IDKey([]byte(pw), salt, pwTime, pwMemory, pwThreads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", pwMemory, pwTime, pwThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h)), nil
}

// CheckPassword compares a password with an encoded hash in constant time.
func CheckPassword(pw, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// RandomSecret returns a URL-safe random secret of n bytes.
func RandomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Bootstrap creates the first admin account when there are no users, with
// a random one-time password that must be changed; it returns the password
// ("" when users exist already).
func (d *DB) Bootstrap(ctx context.Context, name string) (string, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return "", fmt.Errorf("accounts: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	pw := RandomSecret(15)
	if _, err := d.AddUser(ctx, name, "admin", pw, true); err != nil {
		return "", err
	}
	return pw, nil
}

// AddUser creates a user.
func (d *DB) AddUser(ctx context.Context, name, role, pw string, mustChange bool) (*User, error) {
	if _, ok := Roles[role]; !ok {
		return nil, fmt.Errorf("%w %q (viewer, builder, restore-operator, admin)", ErrBadRole, role)
	}
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n/:") {
		return nil, fmt.Errorf("user name %q: 1-64 characters, no spaces, '/' or ':'", name)
	}
	if len(pw) < 12 {
		return nil, errors.New("password too short: at least 12 characters")
	}
	h, err := HashPassword(pw)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	res, err := d.db.ExecContext(ctx, `INSERT INTO users(name, role, pw_hash, created, must_change) VALUES(?,?,?,?,?)`, name, role, h, now.UnixNano(), mustChange)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return nil, fmt.Errorf("user %s: %w", name, ErrExists)
		}
		return nil, fmt.Errorf("accounts: add user %s: %w", name, err)
	}
	id, _ := res.LastInsertId()
	return &User{ID: id, Name: name, Role: role, Created: now, MustChange: mustChange}, nil
}

// Users lists the accounts.
func (d *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, name, role, created, must_change FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var c int64
		if err := rows.Scan(&u.ID, &u.Name, &u.Role, &c, &u.MustChange); err != nil {
			return nil, err
		}
		u.Created = time.Unix(0, c)
		out = append(out, u)
	}
	return out, rows.Err()
}

func (d *DB) user(ctx context.Context, where string, arg any) (*User, string, error) {
	var u User
	var c int64
	var h string
	err := d.db.QueryRowContext(ctx, `SELECT id, name, role, created, must_change, pw_hash FROM users WHERE `+where, arg).Scan(&u.ID, &u.Name, &u.Role, &c, &u.MustChange, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNoSuchUser
	}
	if err != nil {
		return nil, "", fmt.Errorf("accounts: %w", err)
	}
	u.Created = time.Unix(0, c)
	return &u, h, nil
}

// Login checks a password.
func (d *DB) Login(ctx context.Context, name, pw string) (*User, error) {
	u, h, err := d.user(ctx, "name = ?", name)
	if errors.Is(err, ErrNoSuchUser) {
		CheckPassword(pw, dummyHash()) // same time whether or not the user exists
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if !CheckPassword(pw, h) {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// dummyHash is a hash to check unknown users against, made on first use
// (not at program start: argon2id takes 19 MiB, and every bes command
// would pay for it).
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("dummy password for timing")
	return h
})

// SetPassword changes a user's password and clears must-change.
func (d *DB) SetPassword(ctx context.Context, id int64, pw string) error {
	if len(pw) < 12 {
		return errors.New("password too short: at least 12 characters")
	}
	h, err := HashPassword(pw)
	if err != nil {
		return err
	}
	res, err := d.db.ExecContext(ctx, `UPDATE users SET pw_hash = ?, must_change = 0 WHERE id = ?`, h, id)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoSuchUser
	}
	return nil
}

// Token is an API token's public description.
type Token struct {
	ID       int64     `json:"id"`
	UserID   int64     `json:"user_id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// NewToken creates a bearer token for a user; the secret is returned once.
func (d *DB) NewToken(ctx context.Context, userID int64, name string, ttl time.Duration) (string, *Token, error) {
	secret := "bes_" + RandomSecret(32)
	now := time.Now()
	var exp int64
	if ttl > 0 {
		exp = now.Add(ttl).UnixNano()
	}
	res, err := d.db.ExecContext(ctx, `INSERT INTO tokens(user_id, name, digest, created, expires) VALUES(?,?,?,?,?)`, userID, name, digest(secret), now.UnixNano(), exp)
	if err != nil {
		return "", nil, fmt.Errorf("accounts: new token: %w", err)
	}
	id, _ := res.LastInsertId()
	t := &Token{ID: id, UserID: userID, Name: name, Created: now}
	if exp != 0 {
		t.Expires = time.Unix(0, exp)
	}
	return secret, t, nil
}

// Tokens lists tokens (of one user, or all with userID 0).
func (d *DB) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, user_id, name, created, expires, last_used FROM tokens WHERE ? = 0 OR user_id = ? ORDER BY id`, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var c, e, l int64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &c, &e, &l); err != nil {
			return nil, err
		}
		t.Created = time.Unix(0, c)
		if e != 0 {
			t.Expires = time.Unix(0, e)
		}
		if l != 0 {
			t.LastUsed = time.Unix(0, l)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken deletes a token (of userID, or any with userID 0).
func (d *DB) RevokeToken(ctx context.Context, id, userID int64) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM tokens WHERE id = ? AND (? = 0 OR user_id = ?)`, id, userID, userID)
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoSuchUser
	}
	return nil
}

// ByToken resolves a bearer token.
func (d *DB) ByToken(ctx context.Context, secret string) (*User, error) {
	var uid, exp int64
	err := d.db.QueryRowContext(ctx, `SELECT user_id, expires FROM tokens WHERE digest = ?`, digest(secret)).Scan(&uid, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && exp != 0 && exp < time.Now().UnixNano()) {
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	// last_used is written at most once a minute per token: a write (and
	// its fsync) per API request would serialize every client.
	now := time.Now()
	key := string(digest(secret))
	if last, ok := d.used.Load(key); !ok || now.Sub(last.(time.Time)) > time.Minute {
		d.used.Store(key, now)
		d.db.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE digest = ?`, now.UnixNano(), digest(secret))
	}
	u, _, err := d.user(ctx, "id = ?", uid)
	return u, err
}

// NewSession starts a console session; it returns the session ID (the
// cookie value) and its CSRF token.
func (d *DB) NewSession(ctx context.Context, userID int64, ttl time.Duration) (id, csrf string, err error) {
	id, csrf = RandomSecret(32), RandomSecret(24)
	now := time.Now()
	_, err = d.db.ExecContext(ctx, `INSERT INTO sessions(digest, user_id, csrf, created, expires) VALUES(?,?,?,?,?)`,
		digest(id), userID, csrf, now.UnixNano(), now.Add(ttl).UnixNano())
	if err != nil {
		return "", "", fmt.Errorf("accounts: new session: %w", err)
	}
	d.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires < ?`, now.UnixNano())
	return id, csrf, nil
}

// BySession resolves a session cookie; it returns the user and the
// session's CSRF token.
func (d *DB) BySession(ctx context.Context, id string) (*User, string, error) {
	var uid, exp int64
	var csrf string
	err := d.db.QueryRowContext(ctx, `SELECT user_id, csrf, expires FROM sessions WHERE digest = ?`, digest(id)).Scan(&uid, &csrf, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && exp < time.Now().UnixNano()) {
		return nil, "", ErrBadCredentials
	}
	if err != nil {
		return nil, "", fmt.Errorf("accounts: %w", err)
	}
	u, _, err := d.user(ctx, "id = ?", uid)
	return u, csrf, err
}

// EndSession deletes a session.
func (d *DB) EndSession(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE digest = ?`, digest(id))
	return err
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Remote string    `json:"remote"`
	Detail string    `json:"detail,omitempty"`
}

// Audit appends to the audit log.
func (d *DB) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO audit(at, actor, action, target, remote, detail) VALUES(?,?,?,?,?,?)`,
		e.At.UnixNano(), e.Actor, e.Action, e.Target, e.Remote, e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditLog returns entries newest first, after the given ID cursor (0: from
// the newest), at most limit.
func (d *DB) AuditLog(ctx context.Context, before int64, limit int) ([]AuditEntry, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, at, actor, action, target, remote, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Remote, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.Unix(0, at)
		out = append(out, e)
	}
	return out, rows.Err()
}
