// Package model is the appliance's configuration model: storage targets and
// backup policies with the seed manual's fields, ranges, defaults and rules,
// kept in the appliance database (SQLite, beside the accounts).
//
// Rules enforced here: a target's critical threshold exceeds its alert
// threshold; a target a policy uses cannot be deleted (foreign key
// RESTRICT); target credentials are encrypted at rest (AES-256-GCM under
// a key file of the data directory) and never returned; a policy's cron
// schedules parse as 5-field expressions; GFS ranges daily 1-365, weekly
// 0-52, monthly 0-120; verify sample count 1-10000.
package model

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)
	"github.com/robfig/cron/v3"
)

// Errors.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("in use")
	ErrExists   = errors.New("already exists")
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Target types and the connection fields each needs.
var targetFields = map[string][]string{
	"local":         {"path"},
	"s3":            {"endpoint", "bucket"},
	"s3_compatible": {"endpoint", "bucket"},
	"smb":           {"server", "share"},
	"nfs":           {"server", "export"},
	"iscsi":         {"portal", "iqn", "lun"},
}

var targetOptional = map[string][]string{
	"local":         {},
	"s3":            {"region", "prefix"},
	"s3_compatible": {"region", "prefix"},
	"smb":           {"path"},
	"nfs":           {"mount_options"},
	"iscsi":         {},
}

// Credentials of a storage target (the secret is write-only).
type Credentials struct {
	Username string `json:"username"`
	Secret   string `json:"secret,omitempty"`
	Type     string `json:"type"` // access_key | password | ...
}

// StorageTarget is where a policy's backups go.
type StorageTarget struct {
	ID                int64             `json:"id"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Config            map[string]string `json:"config"`
	AlertThreshold    int               `json:"alert_threshold"`
	CriticalThreshold int               `json:"critical_threshold"`
	Credentials       *Credentials      `json:"credentials,omitempty"` // input only
	HasCredentials    bool              `json:"has_credentials"`
	Created           time.Time         `json:"created"`
	Updated           time.Time         `json:"updated"`
}

// Validate checks a target and fills in defaults.
func (t *StorageTarget) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || len(t.Name) > 128 {
		return invalid("name: 1-128 characters")
	}
	req, ok := targetFields[t.Type]
	if !ok {
		return invalid("type %q: one of local, s3, s3_compatible, smb, nfs, iscsi", t.Type)
	}
	for _, f := range req {
		if strings.TrimSpace(t.Config[f]) == "" {
			return invalid("config.%s is required for a %s target", f, t.Type)
		}
	}
	allowed := map[string]bool{}
	for _, f := range append(append([]string{}, req...), targetOptional[t.Type]...) {
		allowed[f] = true
	}
	for k := range t.Config {
		if !allowed[k] {
			return invalid("config.%s is not a field of a %s target", k, t.Type)
		}
	}
	if t.Type == "local" && !strings.HasPrefix(t.Config["path"], "/") {
		return invalid("config.path of a local target must be absolute")
	}
	if t.AlertThreshold == 0 {
		t.AlertThreshold = 85
	}
	if t.CriticalThreshold == 0 {
		t.CriticalThreshold = 95
	}
	if t.AlertThreshold < 1 || t.AlertThreshold > 100 || t.CriticalThreshold < 1 || t.CriticalThreshold > 100 {
		return invalid("thresholds are percentages 1-100")
	}
	if t.CriticalThreshold <= t.AlertThreshold {
		return invalid("critical threshold (%d) must be higher than the alert threshold (%d)", t.CriticalThreshold, t.AlertThreshold)
	}
	if c := t.Credentials; c != nil && (c.Username == "" && c.Secret == "") {
		return invalid("credentials: username or secret required (omit credentials for none)")
	}
	return nil
}

// Retention is a policy's GFS counts.
type Retention struct {
	Daily   int `json:"daily"`
	Weekly  int `json:"weekly"`
	Monthly int `json:"monthly"`
}

// Policy is what to back up, when, how and for how long.
type Policy struct {
	ID                    int64     `json:"id"`
	Name                  string    `json:"name"`
	TargetID              int64     `json:"storage_target_id"`
	BackupType            string    `json:"backup_type"` // file | image
	FullSchedule          string    `json:"full_schedule"`
	IncrementalSchedule   string    `json:"incremental_schedule,omitempty"`
	SyntheticSchedule     string    `json:"synthetic_full_schedule,omitempty"`
	ExcludePaths          []string  `json:"exclude_paths"`
	ExcludePatterns       []string  `json:"exclude_patterns"`
	ExclusionTemplate     string    `json:"exclusion_template,omitempty"`
	Retention             Retention `json:"retention"`
	Compression           string    `json:"compression"`
	Encryption            string    `json:"encryption"`
	Dedup                 *bool     `json:"dedup"`
	MaxTransferMBps       float64   `json:"max_transfer_mbps"`
	IOPriority            string    `json:"io_priority"`
	ThrottleSchedule      string    `json:"throttle_schedule,omitempty"`
	VSSEnabled            *bool     `json:"vss_enabled"`
	CatchUpOnReconnect    *bool     `json:"catch_up_on_reconnect"`
	VerifyAfterBackup     *bool     `json:"verify_after_backup"`
	VerifySampleCount     int       `json:"verify_sample_count"`
	PrePatchBackup        *bool     `json:"pre_patch_backup"`
	ArchiveOnDeactivation *bool     `json:"archive_on_host_deactivation"`
	Enabled               *bool     `json:"enabled"`
	RPOHours              int       `json:"rpo_hours"` // recovery point objective of its objects (1-8760, default 24)
	PausedReason          string    `json:"paused_reason,omitempty"`
	Created               time.Time `json:"created"`
	Updated               time.Time `json:"updated"`
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// ParseSchedule parses a 5-field cron expression (ranges like 1-6, steps,
// lists, names).
func ParseSchedule(spec string) (cron.Schedule, error) {
	if len(strings.Fields(spec)) != 5 {
		return nil, invalid("schedule %q: want 5 fields (minute hour day-of-month month day-of-week)", spec)
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, invalid("schedule %q: %v", spec, err)
	}
	return s, nil
}

func boolDefault(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}

// Validate checks a policy and fills in defaults.
func (p *Policy) Validate() error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || len(p.Name) > 128 {
		return invalid("name: 1-128 characters")
	}
	if p.TargetID <= 0 {
		return invalid("storage_target_id is required")
	}
	if p.BackupType != "file" && p.BackupType != "image" {
		return invalid("backup_type %q: file or image", p.BackupType)
	}
	if p.FullSchedule == "" {
		return invalid("full_schedule is required (e.g. \"0 2 * * 0\")")
	}
	for _, s := range []struct{ name, spec string }{
		{"full_schedule", p.FullSchedule}, {"incremental_schedule", p.IncrementalSchedule},
		{"synthetic_full_schedule", p.SyntheticSchedule}, {"throttle_schedule", p.ThrottleSchedule},
	} {
		if s.spec == "" {
			continue
		}
		if _, err := ParseSchedule(s.spec); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if p.Retention == (Retention{}) {
		p.Retention = Retention{Daily: 7, Weekly: 4, Monthly: 12}
	}
	r := p.Retention
	if r.Daily < 1 || r.Daily > 365 || r.Weekly < 0 || r.Weekly > 52 || r.Monthly < 0 || r.Monthly > 120 {
		return invalid("retention: daily 1-365, weekly 0-52, monthly 0-120 (got %d/%d/%d)", r.Daily, r.Weekly, r.Monthly)
	}
	if p.Compression == "" {
		p.Compression = "zstd"
	}
	if p.Compression != "zstd" && p.Compression != "lz4" && p.Compression != "none" {
		return invalid("compression %q: lz4, zstd or none", p.Compression)
	}
	if p.Encryption == "" {
		p.Encryption = "aes-256-gcm"
	}
	if p.Encryption != "aes-256-gcm" && p.Encryption != "aes-256-cbc" && p.Encryption != "none" {
		return invalid("encryption %q: aes-256-gcm, aes-256-cbc or none", p.Encryption)
	}
	if p.MaxTransferMBps < 0 {
		return invalid("max_transfer_mbps must be >= 0 (0: unlimited)")
	}
	if p.IOPriority == "" {
		p.IOPriority = "normal"
	}
	if p.IOPriority != "normal" && p.IOPriority != "low" && p.IOPriority != "high" {
		return invalid("io_priority %q: normal, low or high", p.IOPriority)
	}
	if p.RPOHours == 0 {
		p.RPOHours = 24
	}
	if p.RPOHours < 1 || p.RPOHours > 8760 {
		return invalid("rpo_hours %d: 1-8760", p.RPOHours)
	}
	if p.VerifySampleCount == 0 {
		p.VerifySampleCount = 50
	}
	if p.VerifySampleCount < 1 || p.VerifySampleCount > 10000 {
		return invalid("verify_sample_count %d: 1-10000", p.VerifySampleCount)
	}
	for _, e := range p.ExcludePaths {
		if e == "" || len(e) > 4096 {
			return invalid("exclude_paths: empty or too long entry")
		}
	}
	if p.ExcludePaths == nil {
		p.ExcludePaths = []string{}
	}
	if p.ExcludePatterns == nil {
		p.ExcludePatterns = []string{}
	}
	boolDefault(&p.Dedup, true)
	boolDefault(&p.VSSEnabled, true)
	boolDefault(&p.CatchUpOnReconnect, true)
	boolDefault(&p.VerifyAfterBackup, true)
	boolDefault(&p.PrePatchBackup, false)
	boolDefault(&p.ArchiveOnDeactivation, true)
	boolDefault(&p.Enabled, true)
	return nil
}

// DB is the model database.
type DB struct {
	db          *sql.DB
	gcm         cipher.AEAD
	interrupted []int64 // jobs found running at open
}

const schema = `
CREATE TABLE IF NOT EXISTS storage_targets (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	doc     TEXT NOT NULL,
	secret  BLOB
);
CREATE TABLE IF NOT EXISTS policies (
	id        INTEGER PRIMARY KEY,
	name      TEXT NOT NULL UNIQUE,
	target_id INTEGER NOT NULL REFERENCES storage_targets(id) ON DELETE RESTRICT,
	doc       TEXT NOT NULL
);
`

// Open opens (creating) the model tables in the database at path; keyFile
// holds the 32-byte key that encrypts credentials (created 0600 if absent).
func Open(ctx context.Context, path, keyFile string) (*DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("model: open %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	key, err := loadKey(keyFile)
	if err != nil {
		db.Close()
		return nil, err
	}
	blk, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(blk)
	d := &DB{db: db, gcm: gcm}
	if _, err := db.ExecContext(ctx, assignSchema+capacitySchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if err := d.initJobs(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("model: credentials key: %w", err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return nil, fmt.Errorf("model: credentials key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		return b, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("model: credentials key: %w", err)
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("model: credentials key %s: %d bytes, want 32", path, len(b))
	}
	return b, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

func (d *DB) seal(c *Credentials) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, d.gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return d.gcm.Seal(nonce, nonce, b, []byte("bes target credentials")), nil
}

// TargetCredentials decrypts a target's credentials (nil when it has none).
func (d *DB) TargetCredentials(ctx context.Context, id int64) (*Credentials, error) {
	var sealed []byte
	if err := d.db.QueryRowContext(ctx, `SELECT secret FROM storage_targets WHERE id = ?`, id).Scan(&sealed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if sealed == nil {
		return nil, nil
	}
	n := d.gcm.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("model: credentials corrupt")
	}
	b, err := d.gcm.Open(nil, sealed[:n], sealed[n:], []byte("bes target credentials"))
	if err != nil {
		return nil, fmt.Errorf("model: credentials: %w", err)
	}
	var c Credentials
	return &c, json.Unmarshal(b, &c)
}

func isUnique(err error) bool { return err != nil && strings.Contains(err.Error(), "UNIQUE") }

// PutTarget creates (ID 0) or replaces a target. New credentials replace
// the stored ones (rotation); none keeps them.
func (d *DB) PutTarget(ctx context.Context, t *StorageTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := time.Now().UTC()
	creds := t.Credentials
	t.Credentials = nil
	if t.ID == 0 {
		t.Created = now
	}
	t.Updated = now
	var sealed []byte
	if creds != nil {
		var err error
		if sealed, err = d.seal(creds); err != nil {
			return err
		}
		t.HasCredentials = true
	}
	if t.ID == 0 {
		doc, _ := json.Marshal(t)
		res, err := d.db.ExecContext(ctx, `INSERT INTO storage_targets(name, doc, secret) VALUES(?,?,?)`, t.Name, string(doc), sealed)
		if isUnique(err) {
			return fmt.Errorf("storage target %q: %w", t.Name, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		t.ID, _ = res.LastInsertId()
		doc, _ = json.Marshal(t)
		_, err = d.db.ExecContext(ctx, `UPDATE storage_targets SET doc = ? WHERE id = ?`, string(doc), t.ID)
		return err
	}
	old, err := d.Target(ctx, t.ID)
	if err != nil {
		return err
	}
	t.Created = old.Created
	if creds == nil {
		t.HasCredentials = old.HasCredentials
	}
	doc, _ := json.Marshal(t)
	q := `UPDATE storage_targets SET name = ?, doc = ? WHERE id = ?`
	args := []any{t.Name, string(doc), t.ID}
	if creds != nil {
		q = `UPDATE storage_targets SET name = ?, doc = ?, secret = ? WHERE id = ?`
		args = []any{t.Name, string(doc), sealed, t.ID}
	}
	_, err = d.db.ExecContext(ctx, q, args...)
	if isUnique(err) {
		return fmt.Errorf("storage target %q: %w", t.Name, ErrExists)
	}
	return err
}

// Target returns one target.
func (d *DB) Target(ctx context.Context, id int64) (*StorageTarget, error) {
	var doc string
	err := d.db.QueryRowContext(ctx, `SELECT doc FROM storage_targets WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("storage target %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var t StorageTarget
	return &t, json.Unmarshal([]byte(doc), &t)
}

// Targets lists targets by ID.
func (d *DB) Targets(ctx context.Context) ([]StorageTarget, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT doc FROM storage_targets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer rows.Close()
	out := []StorageTarget{}
	for rows.Next() {
		var doc string
		var t StorageTarget
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(doc), &t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteTarget deletes a target no policy uses.
func (d *DB) DeleteTarget(ctx context.Context, id int64) error {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM policies WHERE target_id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("storage target %d is used by %d policies: reassign or delete them first: %w", id, n, ErrInUse)
	}
	res, err := d.db.ExecContext(ctx, `DELETE FROM storage_targets WHERE id = ?`, id)
	if err != nil {
		if strings.Contains(err.Error(), "FOREIGN KEY") {
			return fmt.Errorf("storage target %d: %w", id, ErrInUse)
		}
		return fmt.Errorf("model: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("storage target %d: %w", id, ErrNotFound)
	}
	return nil
}

// PutPolicy creates (ID 0) or replaces a policy.
func (d *DB) PutPolicy(ctx context.Context, p *Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if _, err := d.Target(ctx, p.TargetID); err != nil {
		return invalid("storage_target_id %d: no such storage target", p.TargetID)
	}
	now := time.Now().UTC()
	p.Updated = now
	if p.ID == 0 {
		p.Created = now
		doc, _ := json.Marshal(p)
		res, err := d.db.ExecContext(ctx, `INSERT INTO policies(name, target_id, doc) VALUES(?,?,?)`, p.Name, p.TargetID, string(doc))
		if isUnique(err) {
			return fmt.Errorf("policy %q: %w", p.Name, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		p.ID, _ = res.LastInsertId()
		doc, _ = json.Marshal(p)
		_, err = d.db.ExecContext(ctx, `UPDATE policies SET doc = ? WHERE id = ?`, string(doc), p.ID)
		return err
	}
	old, err := d.Policy(ctx, p.ID)
	if err != nil {
		return err
	}
	p.Created = old.Created
	doc, _ := json.Marshal(p)
	_, err = d.db.ExecContext(ctx, `UPDATE policies SET name = ?, target_id = ?, doc = ? WHERE id = ?`, p.Name, p.TargetID, string(doc), p.ID)
	if isUnique(err) {
		return fmt.Errorf("policy %q: %w", p.Name, ErrExists)
	}
	return err
}

// Policy returns one policy.
func (d *DB) Policy(ctx context.Context, id int64) (*Policy, error) {
	var doc string
	err := d.db.QueryRowContext(ctx, `SELECT doc FROM policies WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var p Policy
	return &p, json.Unmarshal([]byte(doc), &p)
}

// Policies lists policies by ID.
func (d *DB) Policies(ctx context.Context) ([]Policy, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT doc FROM policies ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer rows.Close()
	out := []Policy{}
	for rows.Next() {
		var doc string
		var p Policy
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePolicy deletes a policy (its assignments, replica rules and hooks
// go with it once they exist).
func (d *DB) DeletePolicy(ctx context.Context, id int64) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM policies WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("policy %d: %w", id, ErrNotFound)
	}
	return nil
}
