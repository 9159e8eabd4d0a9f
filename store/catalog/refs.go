package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reference counting (see docs/catalog-schema.md, "Garbage collection").
//
// Every indexed blob has refs, the number of committed points that
// reference it (each point counts a blob once), and dead, the time (ns) it
// became unreferenced: the time it was indexed for a blob not yet
// committed, the time its last point was forgotten otherwise. A blob with
// refs 0 is garbage once no writer can still reuse it: the collector
// removes only rows with refs 0 and dead before its cut-off (no later than
// the start of any writer session), and a writer that reuses an
// unreferenced row first moves its dead time to now (Reuse).

// Ref is a change of a blob's reference count by N.
type Ref struct {
	ID ChunkID
	N  int64
}

// ErrMissingChunk is returned when a point to be committed references a
// blob the index does not hold.
var ErrMissingChunk = errors.New("referenced chunk is not in the index")

// ErrPointLocked is returned when a locked (immutable) point would be
// removed.
var ErrPointLocked = errors.New("point is locked")

// CommitPoint commits a point row and adds its references in one
// transaction. refs must list each referenced blob once with N = 1; a
// missing blob fails the whole commit (ErrMissingChunk). Committing a point
// that is already there changes nothing and reports false.
func (c *Catalog) CommitPoint(ctx context.Context, p Point, refs []Ref) (bool, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("catalog: commit point %s: %w", p.ID, err)
	}
	defer tx.Rollback()
	added, err := insertPoint(ctx, tx, p)
	if err != nil || !added {
		return false, err
	}
	if err := adjust(ctx, tx, refs, 0); err != nil {
		return false, fmt.Errorf("catalog: commit point %s: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("catalog: commit point %s: %w", p.ID, err)
	}
	return true, nil
}

// RemovePoint deletes a point row and applies changes (its references as
// given to CommitPoint, negated, plus any new ones such as its tombstone's)
// in one transaction; blobs left unreferenced die at now. A point whose
// retain-until lies after now is refused (ErrPointLocked).
func (c *Catalog) RemovePoint(ctx context.Context, id string, changes []Ref, now time.Time) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: remove point %s: %w", id, err)
	}
	defer tx.Rollback()
	var until int64
	err = tx.QueryRowContext(ctx, `SELECT retain_until FROM points WHERE id = ?`, id).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("point %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("catalog: remove point %s: %w", id, err)
	}
	if until > now.UnixNano() {
		return fmt.Errorf("point %s until %s: %w", id, nsTime(until).UTC().Format(time.RFC3339), ErrPointLocked)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM points WHERE id = ?`, id); err != nil {
		return fmt.Errorf("catalog: remove point %s: %w", id, err)
	}
	if err := adjust(ctx, tx, changes, now.UnixNano()); err != nil {
		return fmt.Errorf("catalog: remove point %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: remove point %s: %w", id, err)
	}
	return nil
}

// UpdatePointDoc replaces a point's document (a new version of it was
// stored as a blob) and raises its retain-until to at least until; refs
// moves the reference from the old document blob to the new one.
func (c *Catalog) UpdatePointDoc(ctx context.Context, id string, doc []byte, until time.Time, refs []Ref, now time.Time) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: update point %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE points SET doc = ?, retain_until = max(retain_until, ?) WHERE id = ?`, doc, timeNS(until), id)
	if err != nil {
		return fmt.Errorf("catalog: update point %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("point %q: %w", id, ErrNotFound)
	}
	if err := adjust(ctx, tx, refs, now.UnixNano()); err != nil {
		return fmt.Errorf("catalog: update point %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: update point %s: %w", id, err)
	}
	return nil
}

// adjust applies reference changes; a count reaching 0 sets dead to now.
// Changes are applied set-wise: the IDs of one delta go to SQLite as one
// JSON array per batch, so a point of a million chunks costs a few
// statements, not a million round trips. Statements run without the
// caller's cancellation (the driver would watch each from a goroutine of
// its own); ctx is checked between batches.
func adjust(cctx context.Context, tx *sql.Tx, refs []Ref, now int64) error {
	if len(refs) == 0 {
		return nil
	}
	ctx := context.WithoutCancel(cctx)
	byDelta := map[int64][]ChunkID{}
	for _, r := range refs {
		if r.N != 0 {
			byDelta[r.N] = append(byDelta[r.N], r.ID)
		}
	}
	const batch = 2000 // IDs per statement: SQLite parses each JSON list into memory
	for n, ids := range byDelta {
		slices.SortFunc(ids, func(a, b ChunkID) int { return bytes.Compare(a[:], b[:]) })
		ids = slices.Compact(ids)
		for len(ids) > 0 {
			if err := cctx.Err(); err != nil {
				return err
			}
			k := min(len(ids), batch)
			if err := adjustBatch(ctx, tx, ids[:k], n, now); err != nil {
				return err
			}
			ids = ids[k:]
		}
	}
	return nil
}

// idsJSON encodes IDs as a JSON array of hex strings (for json_each).
func idsJSON(ids []ChunkID) string {
	b := make([]byte, 0, len(ids)*67+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = hex.AppendEncode(b, id[:])
		b = append(b, '"')
	}
	return string(append(b, ']'))
}

func adjustBatch(ctx context.Context, tx *sql.Tx, ids []ChunkID, n, now int64) error {
	list := idsJSON(ids)
	if n > 0 {
		res, err := tx.ExecContext(ctx, `UPDATE chunks SET refs = refs + ?1 WHERE id IN (SELECT unhex(value) FROM json_each(?2))`, n, list)
		if err != nil {
			return err
		}
		if got, _ := res.RowsAffected(); got != int64(len(ids)) {
			var missing string
			tx.QueryRowContext(ctx, `SELECT value FROM json_each(?1) WHERE unhex(value) NOT IN (SELECT id FROM chunks) LIMIT 1`, list).Scan(&missing)
			return fmt.Errorf("chunk %.16s (%d of %d missing): %w", missing, int64(len(ids))-got, len(ids), ErrMissingChunk)
		}
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE chunks SET refs = max(refs - ?1, 0), dead = CASE WHEN refs - ?1 <= 0 THEN ?2 ELSE dead END
		WHERE id IN (SELECT unhex(value) FROM json_each(?3))`, -n, now, list)
	return err
}

// Reuse reports whether a writer may reference an indexed blob instead of
// storing it. A referenced blob may be. An unreferenced one (garbage, or
// left by an interrupted backup) is touched first: its death time moves to
// now, which is after the cut-off of any collection running or to come
// while the writer's session lasts, so the collector spares it; if the
// collector removed it already, the writer stores it again.
func (c *Catalog) Reuse(ctx context.Context, id ChunkID, now int64) (bool, error) {
	var refs int64
	err := c.db.QueryRowContext(ctx, `SELECT refs FROM chunks WHERE id = ?`, id[:]).Scan(&refs)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("catalog: lookup chunk %x: %w", id[:8], err)
	}
	if refs > 0 {
		return true, nil
	}
	res, err := c.touch.ExecContext(ctx, `UPDATE chunks SET dead = max(dead, ?) WHERE id = ? AND refs = 0`, now, id[:])
	if err != nil {
		return false, fmt.Errorf("catalog: touch chunk %x: %w", id[:8], err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	return c.Has(ctx, id) // swept meanwhile (false), or referenced meanwhile
}

// Refs returns a blob's reference count and death time (for tests and
// diagnostics).
func (c *Catalog) Refs(ctx context.Context, id ChunkID) (refs int64, dead time.Time, err error) {
	var d int64
	err = c.db.QueryRowContext(ctx, `SELECT refs, dead FROM chunks WHERE id = ?`, id[:]).Scan(&refs, &d)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, ErrNotFound
	}
	return refs, nsTime(d), err
}

// ResetRefs sets every blob's count to 0, dead at now (before a recount).
func (c *Catalog) ResetRefs(ctx context.Context, now time.Time) error {
	if _, err := c.db.ExecContext(ctx, `UPDATE chunks SET refs = 0, dead = ?`, now.UnixNano()); err != nil {
		return fmt.Errorf("catalog: reset refs: %w", err)
	}
	return nil
}

// AddRefs adds references outside a point commit (a recount).
func (c *Catalog) AddRefs(ctx context.Context, refs []Ref) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog: add refs: %w", err)
	}
	defer tx.Rollback()
	if err := adjust(ctx, tx, refs, 0); err != nil {
		return fmt.Errorf("catalog: add refs: %w", err)
	}
	return tx.Commit()
}

// SweepStats is what one sweep removed from the index.
type SweepStats struct {
	Chunks int64
	Bytes  int64 // stored bytes of the removed rows
}

// Sweep removes the index rows of garbage blobs (refs 0, dead before
// cutoff) in batches of at most batch rows, each batch one transaction, and
// lowers their packs' live bytes. Its cost follows the garbage: a partial
// index holds only unreferenced rows, and each batch is three set-based
// statements.
func (c *Catalog) Sweep(ctx context.Context, cutoff time.Time, batch int, progress func(SweepStats)) (SweepStats, error) {
	var st SweepStats
	if batch <= 0 {
		batch = 100000
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, bytes, err := c.sweepBatch(context.WithoutCancel(ctx), cutoff.UnixNano(), batch)
		if err != nil {
			return st, err
		}
		st.Chunks += n
		st.Bytes += bytes
		if progress != nil {
			progress(st)
		}
		if n < int64(batch) {
			return st, nil
		}
	}
}

func (c *Catalog) sweepBatch(ctx context.Context, cutoff int64, batch int) (int64, int64, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("catalog: sweep: %w", err)
	}
	defer tx.Rollback()
	var n, bytes int64
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS sweep(id BLOB PRIMARY KEY, pack INTEGER NOT NULL, len INTEGER NOT NULL) WITHOUT ROWID`,
		`DELETE FROM temp.sweep`,
		`INSERT INTO temp.sweep SELECT id, pack, len FROM chunks WHERE refs = 0 AND dead < ?1 LIMIT ?2`,
		`UPDATE packs SET live = max(live - s.n, 0) FROM (SELECT pack, sum(len) AS n FROM temp.sweep GROUP BY pack) AS s WHERE packs.id = s.pack`,
		`DELETE FROM chunks WHERE id IN (SELECT id FROM temp.sweep)`,
	} {
		if _, err := tx.ExecContext(ctx, q, cutoff, batch); err != nil {
			return 0, 0, fmt.Errorf("catalog: sweep: %w", err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(len), 0) FROM temp.sweep`).Scan(&n, &bytes); err != nil {
		return 0, 0, fmt.Errorf("catalog: sweep: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM temp.sweep`); err != nil {
		return 0, 0, fmt.Errorf("catalog: sweep: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("catalog: sweep: %w", err)
	}
	return n, bytes, nil
}

// PackUse is a pack with the stored bytes its indexed blobs still occupy.
type PackUse struct {
	Pack
	Live        int64
	LockedUntil time.Time
	Immutable   bool
}

// SparsePacks lists packs holding garbage whose live bytes are under pct
// percent of the blob bytes they were written with (an empty pack has no
// live bytes), least live first. A pack without garbage is never listed.
func (c *Catalog) SparsePacks(ctx context.Context, pct int) ([]PackUse, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name, size, blobs, created, live, locked_until, immutable FROM packs
		WHERE live < data AND live * 100 < data * ? ORDER BY live * 1.0 / max(data, 1), name`, pct)
	if err != nil {
		return nil, fmt.Errorf("catalog: sparse packs: %w", err)
	}
	defer rows.Close()
	var out []PackUse
	for rows.Next() {
		var u PackUse
		var created, locked int64
		if err := rows.Scan(&u.Name, &u.Size, &u.Blobs, &created, &u.Live, &locked, &u.Immutable); err != nil {
			return nil, fmt.Errorf("catalog: sparse packs: %w", err)
		}
		u.Created, u.LockedUntil = nsTime(created), nsTime(locked)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Move is a blob copied into a new pack from OldPack.
type Move struct {
	Blob    // its location in the new pack
	OldPack string
}

// MoveBlobs records a durable new pack holding copies of blobs from other
// packs, points their index rows at the copies (rows that meanwhile moved
// or vanished are left alone), and sends every old pack left without rows
// to the trash. It returns the trashed packs.
func (c *Catalog) MoveBlobs(cctx context.Context, p Pack, moves []Move, now time.Time) ([]string, error) {
	if err := cctx.Err(); err != nil {
		return nil, err
	}
	ctx := context.WithoutCancel(cctx) // see adjust
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO packs(name, size, blobs, created) VALUES(?,?,?,?) ON CONFLICT(name) DO NOTHING`,
		p.Name, p.Size, p.Blobs, timeNS(p.Created)); err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	var pid int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM packs WHERE name = ?`, p.Name).Scan(&pid); err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	old := map[string]int64{}
	var order []string
	for _, m := range moves {
		if _, ok := old[m.OldPack]; ok {
			continue
		}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM packs WHERE name = ?`, m.OldPack).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			id = -1
		} else if err != nil {
			return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
		}
		old[m.OldPack] = id
		order = append(order, m.OldPack)
	}
	st, err := tx.PrepareContext(ctx, `UPDATE chunks SET pack = ?, off = ?, len = ? WHERE id = ? AND pack = ?`)
	if err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	defer st.Close()
	for _, m := range moves {
		if _, err := st.ExecContext(ctx, pid, m.Offset, m.Length, m.ID[:], old[m.OldPack]); err != nil {
			return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
		}
	}
	var trashed []string
	for _, name := range order {
		id := old[name]
		if id < 0 {
			continue
		}
		var live int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(sum(len), 0) FROM chunks WHERE pack = ?`, id).Scan(&live); err != nil {
			return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE packs SET live = ? WHERE id = ?`, live, id); err != nil {
			return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
		}
		ok, err := trashIfEmpty(ctx, tx, id, name, now)
		if err != nil {
			return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
		}
		if ok {
			trashed = append(trashed, name)
		}
	}
	blobs := make([]Blob, len(moves))
	for i, m := range moves {
		blobs[i] = m.Blob
	}
	if err := packRecorded(ctx, tx, pid, p.Name, blobs); err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("catalog: repack into %s: %w", p.Name, err)
	}
	return trashed, nil
}

func trashIfEmpty(ctx context.Context, tx *sql.Tx, id int64, name string, now time.Time) (bool, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM chunks WHERE pack = ?`, id).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM packs WHERE id = ?`, id); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO trash(pack, since) VALUES(?, ?) ON CONFLICT(pack) DO NOTHING`, name, now.UnixNano()); err != nil {
		return false, err
	}
	return true, nil
}

// TrashPack moves a pack without index rows to the trash; it reports false
// (and changes nothing) if the pack still has rows.
func (c *Catalog) TrashPack(ctx context.Context, name string, now time.Time) (bool, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("catalog: trash pack %s: %w", name, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM packs WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("catalog: trash pack %s: %w", name, err)
	}
	ok, err := trashIfEmpty(ctx, tx, id, name, now)
	if err != nil {
		return false, fmt.Errorf("catalog: trash pack %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("catalog: trash pack %s: %w", name, err)
	}
	return ok, nil
}

// Trash lists the packs waiting for their files to be deleted.
func (c *Catalog) Trash(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT pack FROM trash ORDER BY pack`)
	if err != nil {
		return nil, fmt.Errorf("catalog: trash: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("catalog: trash: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Untrash forgets a trashed pack whose files are gone.
func (c *Catalog) Untrash(ctx context.Context, name string) error {
	if _, err := c.db.ExecContext(ctx, `DELETE FROM trash WHERE pack = ?`, name); err != nil {
		return fmt.Errorf("catalog: untrash %s: %w", name, err)
	}
	return nil
}

// LockPack raises a pack's locked-until time (never lowers it).
func (c *Catalog) LockPack(ctx context.Context, name string, until time.Time) error {
	if _, err := c.db.ExecContext(ctx, `UPDATE packs SET locked_until = max(locked_until, ?) WHERE name = ?`, timeNS(until), name); err != nil {
		return fmt.Errorf("catalog: lock pack %s: %w", name, err)
	}
	return nil
}

// SetImmutable records whether a pack's shard files carry the immutable
// attribute.
func (c *Catalog) SetImmutable(ctx context.Context, name string, on bool) error {
	if _, err := c.db.ExecContext(ctx, `UPDATE packs SET immutable = ? WHERE name = ?`, on, name); err != nil {
		return fmt.Errorf("catalog: mark pack %s: %w", name, err)
	}
	return nil
}

// ExpiredImmutable lists packs marked immutable whose lock ended by now.
func (c *Catalog) ExpiredImmutable(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT name FROM packs WHERE immutable = 1 AND locked_until <= ?`, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("catalog: expired locks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("catalog: expired locks: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Garbage counts the rows a sweep with this cut-off would remove.
func (c *Catalog) Garbage(ctx context.Context, cutoff time.Time) (SweepStats, error) {
	var st SweepStats
	err := c.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(len), 0) FROM chunks WHERE refs = 0 AND dead < ?`, cutoff.UnixNano()).Scan(&st.Chunks, &st.Bytes)
	if err != nil {
		return st, fmt.Errorf("catalog: count garbage: %w", err)
	}
	return st, nil
}
