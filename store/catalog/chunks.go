package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ChunkID is a 32-byte keyed chunk ID.
type ChunkID = [32]byte

// Blob is one stored blob (chunk) inside a pack.
type Blob struct {
	ID     ChunkID
	Offset int64 // byte offset of the stored blob in the pack
	Length int64 // stored (compressed, encrypted) length
	RawLen int64 // plaintext length
	Type   uint8 // blob type (data, tree, point)
	Flags  uint8 // compression algorithm and encryption flag
}

// Location is where a chunk lives.
type Location struct {
	Pack string
	Blob
}

// Pack describes one sealed pack.
type Pack struct {
	Name    string
	Size    int64
	Blobs   int
	Created time.Time
}

// AddPack records a durable pack and the index rows of its blobs in one
// transaction. Blobs already indexed (in another pack) keep their first
// location. Re-adding a pack with the same name is a no-op for existing rows.
// New rows start unreferenced (refs 0), dead since the pack's creation: a
// point commit counts them in.
func (c *Catalog) AddPack(ctx context.Context, p Pack, blobs []Blob) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: add pack %s: %w", p.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO packs(name, size, blobs, created) VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING`,
		p.Name, p.Size, p.Blobs, timeNS(p.Created)); err != nil {
		return fmt.Errorf("catalog: add pack %s: %w", p.Name, err)
	}
	var pid int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM packs WHERE name = ?`, p.Name).Scan(&pid); err != nil {
		return fmt.Errorf("catalog: add pack %s: %w", p.Name, err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO chunks(id, pack, off, len, raw_len, type, flags, refs, dead) VALUES(?,?,?,?,?,?,?,0,?) ON CONFLICT(id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("catalog: add pack %s: %w", p.Name, err)
	}
	defer st.Close()
	born := timeNS(p.Created)
	for _, b := range blobs {
		if _, err := st.ExecContext(ctx, b.ID[:], pid, b.Offset, b.Length, b.RawLen, b.Type, b.Flags, born); err != nil {
			return fmt.Errorf("catalog: add pack %s: index blob: %w", p.Name, err)
		}
	}
	if err := packRecorded(ctx, tx, pid, p.Name, blobs); err != nil {
		return fmt.Errorf("catalog: add pack %s: %w", p.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: add pack %s: commit: %w", p.Name, err)
	}
	return nil
}

// Lookup returns the location of a chunk, or ErrNotFound.
func (c *Catalog) Lookup(ctx context.Context, id ChunkID) (Location, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l Location
	l.ID = id
	err := c.lookup.QueryRowContext(ctx, id[:]).Scan(&l.Pack, &l.Offset, &l.Length, &l.RawLen, &l.Type, &l.Flags)
	if errors.Is(err, sql.ErrNoRows) {
		return l, ErrNotFound
	}
	if err != nil {
		return l, fmt.Errorf("catalog: lookup chunk %x: %w", id[:8], err)
	}
	return l, nil
}

// ForEachChunk calls fn with the location of every indexed chunk, in index
// order. One scan is far cheaper than a lookup per chunk when a restore
// needs a large part of the index.
func (c *Catalog) ForEachChunk(ctx context.Context, fn func(Location) error) error {
	rows, err := c.db.QueryContext(ctx, `SELECT c.id, p.name, c.off, c.len, c.raw_len, c.type, c.flags FROM chunks c JOIN packs p ON p.id = c.pack`)
	if err != nil {
		return fmt.Errorf("catalog: scan chunks: %w", err)
	}
	defer rows.Close()
	var id []byte
	for rows.Next() {
		var l Location
		if err := rows.Scan(&id, &l.Pack, &l.Offset, &l.Length, &l.RawLen, &l.Type, &l.Flags); err != nil {
			return fmt.Errorf("catalog: scan chunks: %w", err)
		}
		copy(l.ID[:], id)
		if err := fn(l); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ForEachID calls fn with the ID of every indexed chunk.
func (c *Catalog) ForEachID(ctx context.Context, fn func(id [32]byte)) error {
	rows, err := c.db.QueryContext(ctx, `SELECT id FROM chunks`)
	if err != nil {
		return fmt.Errorf("catalog: scan chunk ids: %w", err)
	}
	defer rows.Close()
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("catalog: scan chunk ids: %w", err)
		}
		if len(raw) == 32 {
			fn([32]byte(raw))
		}
	}
	return rows.Err()
}

// Count returns the number of indexed chunks.
func (c *Catalog) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM chunks`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: count chunks: %w", err)
	}
	return n, nil
}

// Has reports whether a chunk is indexed.
func (c *Catalog) Has(ctx context.Context, id ChunkID) (bool, error) {
	_, err := c.Lookup(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Packs lists every pack, ordered by name.
func (c *Catalog) Packs(ctx context.Context) ([]Pack, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, size, blobs, created FROM packs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("catalog: list packs: %w", err)
	}
	defer rows.Close()
	var out []Pack
	for rows.Next() {
		var p Pack
		var ns int64
		if err := rows.Scan(&p.Name, &p.Size, &p.Blobs, &ns); err != nil {
			return nil, fmt.Errorf("catalog: list packs: %w", err)
		}
		p.Created = nsTime(ns)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PackBlobs lists the indexed blobs of one pack in offset order.
func (c *Catalog) PackBlobs(ctx context.Context, pack string) ([]Blob, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT c.id, c.off, c.len, c.raw_len, c.type, c.flags FROM chunks c JOIN packs p ON p.id = c.pack WHERE p.name = ? ORDER BY c.off`, pack)
	if err != nil {
		return nil, fmt.Errorf("catalog: blobs of pack %s: %w", pack, err)
	}
	defer rows.Close()
	var out []Blob
	for rows.Next() {
		var b Blob
		var id []byte
		if err := rows.Scan(&id, &b.Offset, &b.Length, &b.RawLen, &b.Type, &b.Flags); err != nil {
			return nil, fmt.Errorf("catalog: blobs of pack %s: %w", pack, err)
		}
		copy(b.ID[:], id)
		out = append(out, b)
	}
	return out, rows.Err()
}

// Stats summarises the index.
type Stats struct {
	Packs, Chunks    int64
	PackBytes        int64
	RawBytes, Stored int64
}

// Stats returns counts over packs and chunks.
func (c *Catalog) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size),0) FROM packs`).Scan(&s.Packs, &s.PackBytes)
	if err == nil {
		err = c.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(raw_len),0), coalesce(sum(len),0) FROM chunks`).Scan(&s.Chunks, &s.RawBytes, &s.Stored)
	}
	if err != nil {
		return s, fmt.Errorf("catalog: stats: %w", err)
	}
	return s, nil
}

// packRecorded finishes recording a new pack: its live bytes (the rows that
// point at it), its data bytes (every blob it holds), and the end of its
// pending state.
func packRecorded(ctx context.Context, tx *sql.Tx, pid int64, name string, blobs []Blob) error {
	var data int64
	for _, b := range blobs {
		data += b.Length
	}
	if _, err := tx.ExecContext(ctx, `UPDATE packs SET live = (SELECT coalesce(sum(len), 0) FROM chunks WHERE pack = ?1), data = ?2 WHERE id = ?1`, pid, data); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM pending WHERE pack = ?`, name)
	return err
}

// AddPending records that a pack is about to become durable on the disks
// before the catalog knows it (data, then index): if the writer dies in
// between, the collector finds the pack here and removes it.
func (c *Catalog) AddPending(ctx context.Context, name string, since time.Time) error {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO pending(pack, since) VALUES(?, ?) ON CONFLICT(pack) DO NOTHING`, name, since.UnixNano()); err != nil {
		return fmt.Errorf("catalog: pending pack %s: %w", name, err)
	}
	return nil
}

// DropPending forgets a pending pack whose write was abandoned (its files
// were removed).
func (c *Catalog) DropPending(ctx context.Context, name string) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM pending WHERE pack = ?`, name); err != nil {
		return fmt.Errorf("catalog: pending pack %s: %w", name, err)
	}
	return nil
}

// TrashOrphans sends packs that were pending before cutoff and never
// recorded (their writer died between the files and the index) to the
// trash, and returns how many.
func (c *Catalog) TrashOrphans(ctx context.Context, cutoff, now time.Time) (int, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("catalog: orphan packs: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO trash(pack, since) SELECT pack, ? FROM pending
		WHERE since < ? AND pack NOT IN (SELECT name FROM packs) ON CONFLICT(pack) DO NOTHING`, now.UnixNano(), cutoff.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("catalog: orphan packs: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending WHERE since < ?`, cutoff.UnixNano()); err != nil {
		return 0, fmt.Errorf("catalog: orphan packs: %w", err)
	}
	return int(n), tx.Commit()
}
