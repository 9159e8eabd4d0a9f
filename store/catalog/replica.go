package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ReplicaRule says which points go to which replica.
type ReplicaRule struct {
	ID               int64
	Target           string // the replica's address
	AfterFull        bool   // full and synthetic-full points
	AfterIncremental bool   // incremental points
	Offsite          bool   // the replica is off site (3-2-1 reporting)
	KeyFile          string // the replica's key source: "" (the source's credentials), keyfile:PATH or NAME:CMD
	Created          time.Time
}

// AddReplicaRule records a rule; a rule for the same target is replaced.
func (c *Catalog) AddReplicaRule(ctx context.Context, r ReplicaRule) (int64, error) {
	var id int64
	err := c.db.QueryRowContext(ctx, `INSERT INTO replica_rules(target, after_full, after_incremental, offsite, key_file, created) VALUES(?,?,?,?,?,?)
		ON CONFLICT(target) DO UPDATE SET after_full = excluded.after_full, after_incremental = excluded.after_incremental,
		offsite = excluded.offsite, key_file = excluded.key_file RETURNING id`,
		r.Target, r.AfterFull, r.AfterIncremental, r.Offsite, r.KeyFile, timeNS(r.Created)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("catalog: add replica rule %s: %w", r.Target, err)
	}
	return id, nil
}

// ReplicaRules lists the rules in creation order.
func (c *Catalog) ReplicaRules(ctx context.Context) ([]ReplicaRule, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, target, after_full, after_incremental, offsite, key_file, created FROM replica_rules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: replica rules: %w", err)
	}
	defer rows.Close()
	var out []ReplicaRule
	for rows.Next() {
		var r ReplicaRule
		var created int64
		if err := rows.Scan(&r.ID, &r.Target, &r.AfterFull, &r.AfterIncremental, &r.Offsite, &r.KeyFile, &created); err != nil {
			return nil, fmt.Errorf("catalog: replica rules: %w", err)
		}
		r.Created = nsTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveReplicaRule deletes the rule for a target (and its records).
func (c *Catalog) RemoveReplicaRule(ctx context.Context, target string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM replica_rules WHERE target = ?`, target)
	if err != nil {
		return fmt.Errorf("catalog: remove replica rule %s: %w", target, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("replica rule for %s: %w", target, ErrNotFound)
	}
	return nil
}

// MarkReplicated records that a rule's replica holds a point.
func (c *Catalog) MarkReplicated(ctx context.Context, rule int64, point string, at time.Time) error {
	if _, err := c.db.ExecContext(ctx, `INSERT INTO replicated(rule, point, at) VALUES(?,?,?) ON CONFLICT DO NOTHING`, rule, point, timeNS(at)); err != nil {
		return fmt.Errorf("catalog: mark %s replicated: %w", point, err)
	}
	return nil
}

// Replicated reports whether a rule's replica holds a point.
func (c *Catalog) Replicated(ctx context.Context, rule int64, point string) (bool, error) {
	var at int64
	err := c.db.QueryRowContext(ctx, `SELECT at FROM replicated WHERE rule = ? AND point = ?`, rule, point).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
