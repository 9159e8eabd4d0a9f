package store

import (
	"context"
	"encoding/json"
	"time"
)

// Drill is the record of a restore drill: a point restored into a sandbox,
// every chunk checked against its ID on the way.
type Drill struct {
	Point   string    `json:"point"`
	At      time.Time `json:"at"`
	Seconds float64   `json:"seconds"` // time to restore
	Bytes   int64     `json:"bytes"`
	Files   int64     `json:"files"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
}

// RecordDrill keeps a drill as the repository's latest.
func (r *Repo) RecordDrill(ctx context.Context, d Drill) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return r.cat.SetMeta(ctx, "last_drill", string(b))
}

// LastDrill returns the latest drill (nil if none was recorded).
func (r *Repo) LastDrill(ctx context.Context) (*Drill, error) {
	v, err := r.cat.Meta(ctx, "last_drill")
	if err != nil || v == "" {
		return nil, err
	}
	var d Drill
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
