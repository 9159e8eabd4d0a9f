package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)
)

// ErrNotFound is returned when a chunk, pack or point is not in the catalog.
var ErrNotFound = errors.New("not found in catalog")

// FileName is the catalog's file name inside the repository directory.
const FileName = "catalog.db"

// Catalog is an open catalog database. It is safe for concurrent use.
type Catalog struct {
	db    *sql.DB
	touch *sql.DB // one connection with synchronous=NORMAL (Reuse)
	path  string

	mu     sync.Mutex // guards lookup (a prepared statement on one connection)
	lookup *sql.Stmt
}

var migrations = []string{
	// 1: packs, chunk index, restore points.
	`CREATE TABLE packs (
		id      INTEGER PRIMARY KEY,
		name    TEXT NOT NULL UNIQUE,
		size    INTEGER NOT NULL,
		blobs   INTEGER NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE chunks (
		id      BLOB PRIMARY KEY,
		pack    INTEGER NOT NULL REFERENCES packs(id),
		off     INTEGER NOT NULL,
		len     INTEGER NOT NULL,
		raw_len INTEGER NOT NULL,
		type    INTEGER NOT NULL,
		flags   INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX chunks_pack ON chunks(pack, off);
	CREATE TABLE points (
		id            TEXT PRIMARY KEY,
		kind          TEXT NOT NULL,
		host          TEXT NOT NULL,
		chain         TEXT NOT NULL,
		parent        TEXT NOT NULL DEFAULT '',
		type          TEXT NOT NULL,
		status        TEXT NOT NULL,
		started       INTEGER NOT NULL,
		finished      INTEGER NOT NULL,
		files         INTEGER NOT NULL,
		bytes         INTEGER NOT NULL,
		new_bytes     INTEGER NOT NULL,
		stored_bytes  INTEGER NOT NULL,
		verify_status TEXT NOT NULL DEFAULT 'pending',
		verified_at   INTEGER NOT NULL DEFAULT 0,
		doc           BLOB NOT NULL
	);
	CREATE INDEX points_host ON points(host, finished);`,
	// 2: reference counts for garbage collection, point locks, trash.
	`ALTER TABLE chunks ADD COLUMN refs INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE chunks ADD COLUMN dead INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX chunks_garbage ON chunks(dead) WHERE refs = 0;
	ALTER TABLE packs ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE packs ADD COLUMN data INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE packs ADD COLUMN locked_until INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE packs ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE points ADD COLUMN retain_until INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE points ADD COLUMN policy TEXT NOT NULL DEFAULT '';
	ALTER TABLE points ADD COLUMN verify_mode TEXT NOT NULL DEFAULT '';
	ALTER TABLE points ADD COLUMN verify_chunks INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE points ADD COLUMN verify_damage TEXT NOT NULL DEFAULT '';
	CREATE TABLE trash (
		pack  TEXT PRIMARY KEY,
		since INTEGER NOT NULL
	);
	CREATE TABLE pending (
		pack  TEXT PRIMARY KEY,
		since INTEGER NOT NULL
	);
	CREATE TABLE replica_rules (
		id                INTEGER PRIMARY KEY,
		target            TEXT NOT NULL UNIQUE,
		after_full        INTEGER NOT NULL,
		after_incremental INTEGER NOT NULL,
		offsite           INTEGER NOT NULL,
		key_file          TEXT NOT NULL DEFAULT '',
		created           INTEGER NOT NULL
	);
	CREATE TABLE replicated (
		rule  INTEGER NOT NULL REFERENCES replica_rules(id) ON DELETE CASCADE,
		point TEXT NOT NULL,
		at    INTEGER NOT NULL,
		PRIMARY KEY (rule, point)
	) WITHOUT ROWID;
	CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	);
	UPDATE packs SET live = (SELECT coalesce(sum(len), 0) FROM chunks WHERE chunks.pack = packs.id);
	UPDATE packs SET data = live;
	INSERT INTO meta(key, value) SELECT 'refs', 'stale' WHERE EXISTS (SELECT 1 FROM points);`,
}

// Open opens (creating if needed) the catalog at path and applies pending
// migrations.
func Open(ctx context.Context, path string) (*Catalog, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	q.Set("_cache_size", "-65536") // 64 MiB page cache at most
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	c := &Catalog{db: db, path: path}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Touches (see Reuse) matter only while the writer that makes them
	// runs, so they need no fsync of their own: synchronous=NORMAL keeps
	// the database consistent and lets a backup touch many rows cheaply.
	q.Set("_synchronous", "NORMAL")
	if c.touch, err = sql.Open("sqlite3", "file:"+path+"?"+q.Encode()); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	c.touch.SetMaxOpenConns(1)
	// The catalog names files and hosts: owner-only, like the keys.
	for _, sfx := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+sfx, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	c.lookup, err = db.PrepareContext(ctx, `SELECT p.name, c.off, c.len, c.raw_len, c.type, c.flags FROM chunks c JOIN packs p ON p.id = c.pack WHERE c.id = ?`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: prepare lookup: %w", err)
	}
	return c, nil
}

// Path returns the catalog's file path.
func (c *Catalog) Path() string { return c.path }

// Close closes the database.
func (c *Catalog) Close() error {
	if c.lookup != nil {
		c.lookup.Close()
	}
	if c.touch != nil {
		c.touch.Close()
	}
	return c.db.Close()
}

func (c *Catalog) migrate(ctx context.Context) error {
	var v int
	if err := c.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("catalog: read schema version of %s: %w", c.path, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("catalog: %s has schema version %d, newer than this program knows (%d): upgrade bes", c.path, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("catalog: migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("catalog: migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("catalog: migrate to %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("catalog: migrate to %d: %w", i+1, err)
		}
	}
	return nil
}

// Meta returns a value of the catalog's meta table ("" when unset).
func (c *Catalog) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("catalog: meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta sets a value of the meta table ("" deletes it).
func (c *Catalog) SetMeta(ctx context.Context, key, value string) error {
	var err error
	if value == "" {
		_, err = c.db.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, key)
	} else {
		_, err = c.db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	}
	if err != nil {
		return fmt.Errorf("catalog: set meta %s: %w", key, err)
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (c *Catalog) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := c.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless it
// reports ok.
func (c *Catalog) IntegrityCheck(ctx context.Context) error {
	var s string
	if err := c.db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&s); err != nil {
		return fmt.Errorf("catalog: integrity check: %w", err)
	}
	if s != "ok" {
		return fmt.Errorf("catalog: integrity check of %s: %s", c.path, s)
	}
	return nil
}
