package model

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job kinds, priorities and statuses.
const (
	JobBackup    = "backup" // Mode full | incremental
	JobSynth     = "synthetic_full"
	JobRestore   = "restore"
	JobImageRest = "image_restore"
	JobGC        = "gc"

	PriorityNormal   = 10 // backups
	PriorityHigh     = 20 // restores
	PriorityCritical = 30 // image restore, bare-metal restore

	StatusPending = "pending"
	StatusRunning = "running"
	StatusSuccess = "success"
	StatusWarning = "warning"
	StatusFailed  = "failed"
)

// Job is one unit of work and its run.
type Job struct {
	ID               int64     `json:"id"`
	Kind             string    `json:"kind"`
	Mode             string    `json:"mode,omitempty"` // full | incremental for backups
	PolicyID         int64     `json:"policy_id,omitempty"`
	Host             string    `json:"host,omitempty"`
	Paths            []string  `json:"paths,omitempty"`
	Target           string    `json:"target,omitempty"`    // restores: where to
	Overwrite        bool      `json:"overwrite,omitempty"` // restores: replace existing files
	Priority         int       `json:"priority"`
	Status           string    `json:"status"`
	Trigger          string    `json:"trigger"` // schedule | manual | retry | catch_up
	RetryOf          int64     `json:"retry_of,omitempty"`
	Retryable        bool      `json:"retryable"`
	Attempt          int       `json:"attempt"`
	Created          time.Time `json:"created"`
	Started          time.Time `json:"started,omitzero"`
	Finished         time.Time `json:"finished,omitzero"`
	BytesTransferred int64     `json:"bytes_transferred"`
	BytesProtected   int64     `json:"bytes_protected"`
	PointID          string    `json:"restore_point_id,omitempty"`
	Error            string    `json:"error,omitempty"`
}

const jobsSchema = `
CREATE TABLE IF NOT EXISTS jobs (
	id        INTEGER PRIMARY KEY,
	status    TEXT NOT NULL,
	priority  INTEGER NOT NULL,
	policy_id INTEGER NOT NULL DEFAULT 0,
	host      TEXT NOT NULL DEFAULT '',
	created   INTEGER NOT NULL,
	doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, priority DESC, id);
CREATE INDEX IF NOT EXISTS jobs_policy ON jobs(policy_id, host, id);
`

func (d *DB) initJobs(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, jobsSchema); err != nil {
		return fmt.Errorf("model: jobs: %w", err)
	}
	// A job left running by a process that died is failed, retryable;
	// with those cut off by the last stop, it is retried at the next start.
	rows, err := d.jobsWhere(ctx, `status = ?`, StatusRunning)
	if err != nil {
		return err
	}
	for _, j := range rows {
		j.Status, j.Error, j.Retryable, j.Finished = StatusFailed, ErrInterrupted, j.RetryOf == 0, time.Now().UTC()
		if err := d.SaveJob(ctx, &j); err != nil {
			return err
		}
	}
	cut, err := d.jobsWhere(ctx, `status = ? AND json_extract(doc, '$.error') = ? AND json_extract(doc, '$.retryable') ORDER BY id`, StatusFailed, ErrInterrupted)
	if err != nil {
		return err
	}
	for _, j := range cut {
		d.interrupted = append(d.interrupted, j.ID)
	}
	return nil
}

// ErrInterrupted is the error of a job the appliance stopped under.
const ErrInterrupted = "interrupted: the appliance stopped while it ran"

// Interrupted returns the jobs found running (and failed) at open.
func (d *DB) Interrupted() []int64 { return d.interrupted }

// ErrBusy is returned when a job may not be retried or run now.
var ErrBusy = errors.New("not allowed now")

// Enqueue adds a pending job.
func (d *DB) Enqueue(ctx context.Context, j *Job) error {
	j.Status, j.Created = StatusPending, time.Now().UTC()
	if j.Priority == 0 {
		j.Priority = PriorityNormal
	}
	doc, _ := json.Marshal(j)
	res, err := d.db.ExecContext(ctx, `INSERT INTO jobs(status, priority, policy_id, host, created, doc) VALUES(?,?,?,?,?,?)`,
		j.Status, j.Priority, j.PolicyID, j.Host, j.Created.UnixNano(), string(doc))
	if err != nil {
		return fmt.Errorf("model: enqueue: %w", err)
	}
	j.ID, _ = res.LastInsertId()
	return d.SaveJob(ctx, j)
}

// SaveJob writes a job's state; a finished backup also updates its
// assignment's last-run summary.
func (d *DB) SaveJob(ctx context.Context, j *Job) error {
	doc, _ := json.Marshal(j)
	if _, err := d.db.ExecContext(ctx, `UPDATE jobs SET status = ?, priority = ?, doc = ? WHERE id = ?`, j.Status, j.Priority, string(doc), j.ID); err != nil {
		return fmt.Errorf("model: save job %d: %w", j.ID, err)
	}
	if j.PolicyID == 0 || j.Finished.IsZero() {
		return nil
	}
	q := `UPDATE assignments SET doc = json_set(doc, '$.last_job', ?, '$.last_status', ?) WHERE policy_id = ? AND host = ? AND coalesce(json_extract(doc, '$.last_job'), 0) <= ?`
	args := []any{j.ID, j.Status, j.PolicyID, j.Host, j.ID}
	if j.Status == StatusSuccess || j.Status == StatusWarning {
		q = `UPDATE assignments SET doc = json_set(doc, '$.last_job', ?, '$.last_status', ?, '$.last_success', ?) WHERE policy_id = ? AND host = ? AND coalesce(json_extract(doc, '$.last_job'), 0) <= ?`
		args = []any{j.ID, j.Status, j.Finished.UTC().Format(time.RFC3339Nano), j.PolicyID, j.Host, j.ID}
	}
	if _, err := d.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("model: save job %d: %w", j.ID, err)
	}
	return nil
}

// NextJob claims the highest-priority pending job (oldest first among
// equals), marking it running; nil when none waits.
func (d *DB) NextJob(ctx context.Context) (*Job, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var id int64
	var doc string
	err = tx.QueryRowContext(ctx, `SELECT id, doc FROM jobs WHERE status = ? ORDER BY priority DESC, id LIMIT 1`, StatusPending).Scan(&id, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal([]byte(doc), &j); err != nil {
		return nil, err
	}
	j.Status, j.Started = StatusRunning, time.Now().UTC()
	nd, _ := json.Marshal(&j)
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, doc = ? WHERE id = ?`, j.Status, string(nd), id); err != nil {
		return nil, err
	}
	return &j, tx.Commit()
}

// Job returns one job.
func (d *DB) Job(ctx context.Context, id int64) (*Job, error) {
	js, err := d.jobsWhere(ctx, `id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return &js[0], nil
}

// JobFilter selects jobs.
type JobFilter struct {
	Status   string
	PolicyID int64
	Host     string
	Limit    int
	Offset   int
}

// Jobs lists a page of jobs newest first; the int is 1 when more follow.
func (d *DB) Jobs(ctx context.Context, f JobFilter) ([]Job, int, error) {
	where, args := `1=1`, []any{}
	if f.Status != "" {
		where, args = where+` AND status = ?`, append(args, f.Status)
	}
	if f.PolicyID != 0 {
		where, args = where+` AND policy_id = ?`, append(args, f.PolicyID)
	}
	if f.Host != "" {
		where, args = where+` AND host = ?`, append(args, f.Host)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	js, err := d.jobsWhere(ctx, where+` ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, f.Limit+1, f.Offset)...)
	// No count over the whole table (a million runs cost tens of
	// milliseconds): the second result is how many more follow this page,
	// 0 or 1.
	more := 0
	if len(js) > f.Limit {
		js, more = js[:f.Limit], 1
	}
	return js, more, err
}

func (d *DB) jobsWhere(ctx context.Context, where string, args ...any) ([]Job, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT doc FROM jobs WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("model: jobs: %w", err)
	}
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		var doc string
		var j Job
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(doc), &j); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// latestRun returns the newest job of a policy and host (nil if none).
func (d *DB) latestRun(ctx context.Context, policyID int64, host string) (*Job, error) {
	js, err := d.jobsWhere(ctx, `policy_id = ? AND host = ? ORDER BY id DESC LIMIT 1`, policyID, host)
	if err != nil || len(js) == 0 {
		return nil, err
	}
	return &js[0], nil
}

// Retry enqueues a retry of a failed job. Allowed only when it is the
// latest run of its policy and host, failed and retryable, and no run of
// them is pending or running; the retry itself is not retryable.
func (d *DB) Retry(ctx context.Context, id int64, trigger string) (*Job, error) {
	j, err := d.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Status != StatusFailed || !j.Retryable {
		return nil, fmt.Errorf("job %d is %s and %s: %w", id, j.Status, map[bool]string{true: "retryable", false: "not retryable"}[j.Retryable], ErrBusy)
	}
	latest, err := d.latestRun(ctx, j.PolicyID, j.Host)
	if err != nil {
		return nil, err
	}
	if latest != nil && latest.ID != j.ID {
		return nil, fmt.Errorf("job %d is not the latest run of its policy and host (job %d is, %s): %w", id, latest.ID, latest.Status, ErrBusy)
	}
	n := &Job{Kind: j.Kind, Mode: j.Mode, PolicyID: j.PolicyID, Host: j.Host, Paths: j.Paths, Priority: j.Priority,
		Trigger: trigger, RetryOf: j.ID, Attempt: j.Attempt + 1}
	if err := d.Enqueue(ctx, n); err != nil {
		return nil, err
	}
	j.Retryable = false // retried: not again
	return n, d.SaveJob(ctx, j)
}

// Active reports whether a run of a policy and host is pending or running.
func (d *DB) Active(ctx context.Context, policyID int64, host string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE policy_id = ? AND host = ? AND status IN (?, ?)`, policyID, host, StatusPending, StatusRunning).Scan(&n)
	return n > 0, err
}

// Assignment puts a host under a policy, with what to protect on it.
type Assignment struct {
	ID       int64     `json:"id"`
	PolicyID int64     `json:"policy_id"`
	Host     string    `json:"host"`
	State    string    `json:"state"` // active | paused | archived
	Paths    []string  `json:"paths"` // files and directories, or the disk of an image policy
	Created  time.Time `json:"created"`
	// The latest finished run of this policy and host, kept current by
	// SaveJob so that protected objects and the dashboard read one row.
	LastJob     int64     `json:"last_job,omitempty"`
	LastStatus  string    `json:"last_status,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

const assignSchema = `
CREATE TABLE IF NOT EXISTS assignments (
	id        INTEGER PRIMARY KEY,
	policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
	host      TEXT NOT NULL,
	state     TEXT NOT NULL,
	doc       TEXT NOT NULL,
	UNIQUE (policy_id, host)
);
`

// Assign puts a host under a policy; assigning an archived (or paused)
// host again reactivates its existing assignment with the new paths.
func (d *DB) Assign(ctx context.Context, a *Assignment) error {
	if a.Host == "" || len(a.Host) > 255 {
		return invalid("host: 1-255 characters")
	}
	if len(a.Paths) == 0 {
		return invalid("paths: at least one path to protect")
	}
	for _, p := range a.Paths {
		if len(p) == 0 || p[0] != '/' {
			return invalid("path %q: absolute paths only", p)
		}
	}
	if _, err := d.Policy(ctx, a.PolicyID); err != nil {
		return err
	}
	a.State = "active"
	var id int64
	var doc string
	err := d.db.QueryRowContext(ctx, `SELECT id, doc FROM assignments WHERE policy_id = ? AND host = ?`, a.PolicyID, a.Host).Scan(&id, &doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		a.Created = time.Now().UTC()
		b, _ := json.Marshal(a)
		res, err := d.db.ExecContext(ctx, `INSERT INTO assignments(policy_id, host, state, doc) VALUES(?,?,?,?)`, a.PolicyID, a.Host, a.State, string(b))
		if err != nil {
			return fmt.Errorf("model: assign: %w", err)
		}
		a.ID, _ = res.LastInsertId()
	case err != nil:
		return fmt.Errorf("model: assign: %w", err)
	default:
		var old Assignment
		json.Unmarshal([]byte(doc), &old)
		if old.State == "active" {
			return fmt.Errorf("host %s is already assigned to policy %d: %w", a.Host, a.PolicyID, ErrExists)
		}
		a.ID, a.Created = id, old.Created
	}
	b, _ := json.Marshal(a)
	_, err = d.db.ExecContext(ctx, `UPDATE assignments SET state = ?, doc = ? WHERE id = ?`, a.State, string(b), a.ID)
	return err
}

// Assignments lists assignments (of one policy, or all with 0).
func (d *DB) Assignments(ctx context.Context, policyID int64) ([]Assignment, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT doc FROM assignments WHERE ? = 0 OR policy_id = ? ORDER BY id`, policyID, policyID)
	if err != nil {
		return nil, fmt.Errorf("model: assignments: %w", err)
	}
	defer rows.Close()
	out := []Assignment{}
	for rows.Next() {
		var doc string
		var a Assignment
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(doc), &a)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ProtectedObject is one thing the appliance protects: a host under a
// policy (its paths, or its disk), with its recovery point objective.
type ProtectedObject struct {
	AssignmentID int64     `json:"assignment_id"`
	Type         string    `json:"type"` // file | image
	Host         string    `json:"host"`
	PolicyID     int64     `json:"policy_id"`
	Policy       string    `json:"policy"`
	State        string    `json:"state"`
	RPOHours     int       `json:"rpo_hours"`
	LastStatus   string    `json:"last_backup_status"` // success | warning | failed | running | pending | never
	LastSuccess  time.Time `json:"last_success,omitzero"`
	LastJob      int64     `json:"last_job,omitempty"`
	Breach       bool      `json:"rpo_breach"`
	AtRisk       bool      `json:"at_risk"` // breach, or the last run failed
}

// ProtectedObjects derives the protected objects from the assignments
// (with their last-run summaries) in one pass: in breach when the last
// success is older than the RPO (or never happened and the assignment is
// older than it).
func (d *DB) ProtectedObjects(ctx context.Context, now time.Time) ([]ProtectedObject, error) {
	as, err := d.Assignments(ctx, 0)
	if err != nil {
		return nil, err
	}
	ps, err := d.Policies(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[int64]*Policy{}
	for i := range ps {
		byID[ps[i].ID] = &ps[i]
	}
	out := make([]ProtectedObject, 0, len(as))
	for _, a := range as {
		p := byID[a.PolicyID]
		if p == nil {
			continue
		}
		o := ProtectedObject{AssignmentID: a.ID, Type: p.BackupType, Host: a.Host, PolicyID: p.ID, Policy: p.Name, State: a.State,
			RPOHours: p.RPOHours, LastStatus: a.LastStatus, LastSuccess: a.LastSuccess, LastJob: a.LastJob}
		if o.RPOHours == 0 {
			o.RPOHours = 24
		}
		if o.LastStatus == "" {
			o.LastStatus = "never"
		}
		rpo := time.Duration(o.RPOHours) * time.Hour
		if a.State == "active" {
			if o.LastSuccess.IsZero() {
				o.Breach = now.Sub(a.Created) > rpo
			} else {
				o.Breach = now.Sub(o.LastSuccess) > rpo
			}
		}
		o.AtRisk = o.Breach || o.LastStatus == StatusFailed
		out = append(out, o)
	}
	return out, nil
}

// InsertJobs stores finished job records in one transaction (imports, and
// benchmarks that need a long history); it does not touch assignments.
func (d *DB) InsertJobs(ctx context.Context, js []Job) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO jobs(status, priority, policy_id, host, created, doc) VALUES(?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range js {
		j := &js[i]
		doc, _ := json.Marshal(j)
		if _, err := st.ExecContext(ctx, j.Status, j.Priority, j.PolicyID, j.Host, j.Created.UnixNano(), string(doc)); err != nil {
			return fmt.Errorf("model: insert jobs: %w", err)
		}
	}
	return tx.Commit()
}
