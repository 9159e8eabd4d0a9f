package model

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Usage is one capacity sample of a storage target.
type Usage struct {
	At    time.Time `json:"at"`
	Total int64     `json:"total_bytes"`
	Used  int64     `json:"used_bytes"`
}

// Free returns the free bytes.
func (u Usage) Free() int64 { return u.Total - u.Used }

// Percent returns the used share in percent.
func (u Usage) Percent() float64 {
	if u.Total <= 0 {
		return 0
	}
	return 100 * float64(u.Used) / float64(u.Total)
}

// Capacity is a target's capacity state.
type Capacity struct {
	TargetID     int64     `json:"storage_target_id"`
	Latest       *Usage    `json:"latest,omitempty"`
	UsedPercent  float64   `json:"used_percent"`
	FreeBytes    int64     `json:"free_bytes"`
	GrowthPerDay float64   `json:"growth_bytes_per_day"` // EWMA over the samples
	Samples      int       `json:"samples"`
	FullDate     time.Time `json:"estimated_full,omitzero"`
	Level        string    `json:"level"` // ok | alert | critical | unknown
}

// Event is an alert for the dashboard's exception queues.
type Event struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`     // storage_alert | storage_critical | storage_ok | ...
	Severity string    `json:"severity"` // info | warning | critical
	TargetID int64     `json:"storage_target_id,omitempty"`
	Message  string    `json:"message"`
}

const capacitySchema = `
CREATE TABLE IF NOT EXISTS capacity (
	target_id INTEGER NOT NULL,
	at        INTEGER NOT NULL,
	total     INTEGER NOT NULL,
	used      INTEGER NOT NULL,
	PRIMARY KEY (target_id, at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS capacity_state (
	target_id INTEGER PRIMARY KEY,
	doc       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	id        INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	severity  TEXT NOT NULL,
	target_id INTEGER NOT NULL DEFAULT 0,
	message   TEXT NOT NULL
);
`

// ewmaAlpha weighs the newest growth rate.
const ewmaAlpha = 0.3

// historyKeep is how long capacity samples are kept.
const historyKeep = 366 * 24 * time.Hour

// RecordUsage stores a sample, updates the growth estimate and the level,
// pauses every enabled policy on the target when it reaches critical (with
// paused_reason storage_critical) and resumes exactly those once it is back
// under the alert threshold. It returns the new capacity state and the
// policies it paused or resumed.
func (d *DB) RecordUsage(ctx context.Context, t *StorageTarget, u Usage) (*Capacity, []int64, []int64, error) {
	if _, err := d.db.ExecContext(ctx, `INSERT OR REPLACE INTO capacity(target_id, at, total, used) VALUES(?,?,?,?)`, t.ID, u.At.UnixNano(), u.Total, u.Used); err != nil {
		return nil, nil, nil, fmt.Errorf("model: capacity: %w", err)
	}
	d.db.ExecContext(ctx, `DELETE FROM capacity WHERE target_id = ? AND at < ?`, t.ID, u.At.Add(-historyKeep).UnixNano())
	c, err := d.CapacityOf(ctx, t.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	prev := c.Latest
	if prev != nil && u.At.After(prev.At) {
		days := u.At.Sub(prev.At).Hours() / 24
		rate := float64(u.Used-prev.Used) / days
		if c.Samples <= 1 {
			c.GrowthPerDay = rate // the first rate seeds the average
		} else {
			c.GrowthPerDay = ewmaAlpha*rate + (1-ewmaAlpha)*c.GrowthPerDay
		}
	}
	c.Samples++
	latest := u
	c.Latest = &latest
	c.UsedPercent, c.FreeBytes = u.Percent(), u.Free()
	c.FullDate = time.Time{}
	if c.GrowthPerDay > 0 {
		c.FullDate = u.At.Add(time.Duration(float64(c.FreeBytes) / c.GrowthPerDay * 24 * float64(time.Hour)))
	}
	old := c.Level
	switch {
	case c.UsedPercent >= float64(t.CriticalThreshold):
		c.Level = "critical"
	case c.UsedPercent >= float64(t.AlertThreshold):
		c.Level = "alert"
	default:
		c.Level = "ok"
	}
	doc, _ := json.Marshal(c)
	if _, err := d.db.ExecContext(ctx, `INSERT OR REPLACE INTO capacity_state(target_id, doc) VALUES(?,?)`, t.ID, string(doc)); err != nil {
		return nil, nil, nil, err
	}
	var paused, resumed []int64
	if c.Level != old {
		sev := map[string]string{"ok": "info", "alert": "warning", "critical": "critical"}[c.Level]
		d.AddEvent(ctx, Event{At: u.At, Kind: "storage_" + c.Level, Severity: sev, TargetID: t.ID,
			Message: fmt.Sprintf("storage target %s is %.1f%% full (alert %d%%, critical %d%%)", t.Name, c.UsedPercent, t.AlertThreshold, t.CriticalThreshold)})
	}
	ps, err := d.Policies(ctx)
	if err != nil {
		return c, nil, nil, err
	}
	for i := range ps {
		p := &ps[i]
		if p.TargetID != t.ID {
			continue
		}
		switch {
		case c.Level == "critical" && p.Enabled != nil && *p.Enabled && p.PausedReason == "":
			p.PausedReason = "storage_critical"
			paused = append(paused, p.ID)
		case c.Level == "ok" && p.PausedReason == "storage_critical":
			p.PausedReason = ""
			resumed = append(resumed, p.ID)
		default:
			continue
		}
		if err := d.PutPolicy(ctx, p); err != nil {
			return c, paused, resumed, err
		}
	}
	return c, paused, resumed, nil
}

// CapacityOf returns a target's capacity state (level unknown before the
// first sample).
func (d *DB) CapacityOf(ctx context.Context, id int64) (*Capacity, error) {
	var doc string
	err := d.db.QueryRowContext(ctx, `SELECT doc FROM capacity_state WHERE target_id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return &Capacity{TargetID: id, Level: "unknown"}, nil
	}
	if err != nil {
		return nil, err
	}
	var c Capacity
	return &c, json.Unmarshal([]byte(doc), &c)
}

// UsageHistory returns a target's samples since a time, oldest first.
func (d *DB) UsageHistory(ctx context.Context, id int64, since time.Time) ([]Usage, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT at, total, used FROM capacity WHERE target_id = ? AND at >= ? ORDER BY at`, id, since.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Usage{}
	for rows.Next() {
		var u Usage
		var at int64
		if err := rows.Scan(&at, &u.Total, &u.Used); err != nil {
			return nil, err
		}
		u.At = time.Unix(0, at).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// AddEvent records an event.
func (d *DB) AddEvent(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO events(at, kind, severity, target_id, message) VALUES(?,?,?,?,?)`, e.At.UnixNano(), e.Kind, e.Severity, e.TargetID, e.Message)
	return err
}

// Events returns events since a time, newest first.
func (d *DB) Events(ctx context.Context, since time.Time, limit int) ([]Event, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, at, kind, severity, target_id, message FROM events WHERE at >= ? ORDER BY id DESC LIMIT ?`, since.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Severity, &e.TargetID, &e.Message); err != nil {
			return nil, err
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
