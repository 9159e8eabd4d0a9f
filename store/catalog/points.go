package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Point is a restore point row. Doc holds the point document (JSON) exactly
// as stored in its pack, including the manifest's chunk list.
type Point struct {
	ID           string
	Kind         string // file | image
	Host         string
	Chain        string
	Parent       string
	Type         string // full | incremental
	Status       string // complete | running | failed | expired
	Started      time.Time
	Finished     time.Time
	Files        int64
	Bytes        int64
	NewBytes     int64
	StoredBytes  int64
	VerifyStatus string // pending | passed | failed | partial
	VerifiedAt   time.Time
	RetainUntil  time.Time // immutable until then (zero: not locked)
	Policy       string
	Doc          []byte
}

const pointCols = `id, kind, host, chain, parent, type, status, started, finished, files, bytes, new_bytes, stored_bytes, verify_status, verified_at, retain_until, policy, doc`

// AddPoint commits a restore point row without counting references (for
// tests and tools that count them separately). CommitPoint is the normal
// way in.
func (c *Catalog) AddPoint(ctx context.Context, p Point) error {
	_, err := c.CommitPoint(ctx, p, nil)
	return err
}

func insertPoint(ctx context.Context, tx *sql.Tx, p Point) (bool, error) {
	if p.VerifyStatus == "" {
		p.VerifyStatus = "pending"
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO points(`+pointCols+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO NOTHING`,
		p.ID, p.Kind, p.Host, p.Chain, p.Parent, p.Type, p.Status, timeNS(p.Started), timeNS(p.Finished),
		p.Files, p.Bytes, p.NewBytes, p.StoredBytes, p.VerifyStatus, timeNS(p.VerifiedAt), timeNS(p.RetainUntil), p.Policy, p.Doc)
	if err != nil {
		return false, fmt.Errorf("catalog: add point %s: %w", p.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nsTime is the inverse of timeNS: 0 is the zero time.
func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func scanPoint(sc interface{ Scan(...any) error }) (Point, error) {
	var p Point
	var st, fin, ver, ret int64
	err := sc.Scan(&p.ID, &p.Kind, &p.Host, &p.Chain, &p.Parent, &p.Type, &p.Status, &st, &fin,
		&p.Files, &p.Bytes, &p.NewBytes, &p.StoredBytes, &p.VerifyStatus, &ver, &ret, &p.Policy, &p.Doc)
	p.Started, p.Finished, p.VerifiedAt, p.RetainUntil = nsTime(st), nsTime(fin), nsTime(ver), nsTime(ret)
	return p, err
}

// PointFilter selects points; zero fields match everything.
type PointFilter struct {
	Host string
	Kind string
}

// Points lists restore points oldest first.
func (c *Catalog) Points(ctx context.Context, f PointFilter) ([]Point, error) {
	q := `SELECT ` + pointCols + ` FROM points WHERE 1=1`
	var args []any
	if f.Host != "" {
		q += ` AND host = ?`
		args = append(args, f.Host)
	}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	rows, err := c.db.QueryContext(ctx, q+` ORDER BY finished, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: list points: %w", err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		p, err := scanPoint(rows)
		if err != nil {
			return nil, fmt.Errorf("catalog: list points: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ErrAmbiguous is returned when a point ID prefix matches several points.
var ErrAmbiguous = errors.New("ambiguous point ID prefix")

// Point finds a point by full ID or a unique prefix (at least 4 characters).
func (c *Catalog) Point(ctx context.Context, idOrPrefix string) (Point, error) {
	row := c.db.QueryRowContext(ctx, `SELECT `+pointCols+` FROM points WHERE id = ?`, idOrPrefix)
	p, err := scanPoint(row)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("catalog: point %s: %w", idOrPrefix, err)
	}
	if len(idOrPrefix) < 4 {
		return p, fmt.Errorf("point %q: %w", idOrPrefix, ErrNotFound)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+pointCols+` FROM points WHERE substr(id, 1, ?) = ? LIMIT 2`, len(idOrPrefix), idOrPrefix)
	if err != nil {
		return p, fmt.Errorf("catalog: point %s: %w", idOrPrefix, err)
	}
	defer rows.Close()
	var found []Point
	for rows.Next() {
		q, err := scanPoint(rows)
		if err != nil {
			return p, fmt.Errorf("catalog: point %s: %w", idOrPrefix, err)
		}
		found = append(found, q)
	}
	switch len(found) {
	case 0:
		return p, fmt.Errorf("point %q: %w", idOrPrefix, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return p, fmt.Errorf("point %q: %w", idOrPrefix, ErrAmbiguous)
}

// LatestPoint returns the newest complete point of a host and kind, or
// ErrNotFound.
func (c *Catalog) LatestPoint(ctx context.Context, host, kind string) (Point, error) {
	row := c.db.QueryRowContext(ctx, `SELECT `+pointCols+` FROM points WHERE host = ? AND kind = ? AND status = 'complete' ORDER BY finished DESC, id DESC LIMIT 1`, host, kind)
	p, err := scanPoint(row)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("catalog: latest point of %s: %w", host, err)
	}
	return p, nil
}

// VerifyResult is the outcome of a point's last verification.
type VerifyResult struct {
	Status string // passed | failed
	At     time.Time
	Mode   string // read-data | sample | index
	Chunks int64  // chunks checked
	Damage []string
}

// SetVerifyResult records the outcome of a verification with its details.
func (c *Catalog) SetVerifyResult(ctx context.Context, id string, v VerifyResult) error {
	dmg, err := json.Marshal(v.Damage)
	if err != nil {
		return err
	}
	if v.Damage == nil {
		dmg = nil
	}
	res, err := c.db.ExecContext(ctx, `UPDATE points SET verify_status = ?, verified_at = ?, verify_mode = ?, verify_chunks = ?, verify_damage = ? WHERE id = ?`,
		v.Status, timeNS(v.At), v.Mode, v.Chunks, string(dmg), id)
	if err != nil {
		return fmt.Errorf("catalog: set verify result of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("point %q: %w", id, ErrNotFound)
	}
	return nil
}

// VerifyResultOf returns the last recorded verification of a point.
func (c *Catalog) VerifyResultOf(ctx context.Context, id string) (VerifyResult, error) {
	var v VerifyResult
	var at int64
	var dmg string
	err := c.db.QueryRowContext(ctx, `SELECT verify_status, verified_at, verify_mode, verify_chunks, verify_damage FROM points WHERE id = ?`, id).
		Scan(&v.Status, &at, &v.Mode, &v.Chunks, &dmg)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("point %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("catalog: verify result of %s: %w", id, err)
	}
	v.At = nsTime(at)
	if dmg != "" {
		if err := json.Unmarshal([]byte(dmg), &v.Damage); err != nil {
			return v, fmt.Errorf("catalog: verify result of %s: %w", id, err)
		}
	}
	return v, nil
}

// SetVerifyStatus records the outcome of a verification.
func (c *Catalog) SetVerifyStatus(ctx context.Context, id, status string, at time.Time) error {
	res, err := c.db.ExecContext(ctx, `UPDATE points SET verify_status = ?, verified_at = ? WHERE id = ?`, status, timeNS(at), id)
	if err != nil {
		return fmt.Errorf("catalog: set verify status of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("point %q: %w", id, ErrNotFound)
	}
	return nil
}

// Latest returns the latest start or finish time of any point (zero when
// there are none): a floor for the repository's clock.
func (c *Catalog) Latest(ctx context.Context) (time.Time, error) {
	var ns int64
	if err := c.db.QueryRowContext(ctx, `SELECT coalesce(max(max(started, finished)), 0) FROM points`).Scan(&ns); err != nil {
		return time.Time{}, fmt.Errorf("catalog: latest point time: %w", err)
	}
	return nsTime(ns), nil
}
