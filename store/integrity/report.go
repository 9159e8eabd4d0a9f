package integrity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Format names of the two documents.
const (
	ReportFormat    = "bes-integrity-report/1"
	SignatureFormat = "bes-integrity-signature/1"
	Algorithm       = "ed25519"
)

// Verification modes of a PointResult.
const (
	ModeReadData = "read-data" // every chunk decrypted and hashed
	ModeSample   = "sample"    // a sample of files read back
	ModeIndex    = "index"     // manifest loaded, chunks looked up in the index
	ModeNever    = ""          // never verified
)

// Results of a PointResult (the catalog's verify_status values).
const (
	ResultPassed  = "passed"
	ResultFailed  = "failed"
	ResultPartial = "partial"
	ResultPending = "pending"
)

// PointResult is the verification state of one restore point.
type PointResult struct {
	ID   string    `json:"id"`
	Host string    `json:"host"`
	Kind string    `json:"kind"` // file | image
	Type string    `json:"type"` // full | incremental
	Time time.Time `json:"time"` // the point's time
	// VerifiedAt is when the point was last verified; zero (never) is
	// omitted from the JSON.
	VerifiedAt    time.Time `json:"verified_at,omitzero"`
	Mode          string    `json:"mode,omitempty"` // ModeReadData | ModeSample | ModeIndex | ModeNever
	Result        string    `json:"result"`         // ResultPassed | ResultFailed | ResultPartial | ResultPending
	ChunksChecked int64     `json:"chunks_checked"`
	// Damage names what was found damaged (file paths or chunk IDs, each
	// with the reason); omitted from the JSON when empty.
	Damage []string `json:"damage,omitempty"`
}

// Summary counts the points of a report by result.
type Summary struct {
	Points        int   `json:"points"`
	Passed        int   `json:"passed"`
	Failed        int   `json:"failed"`
	Partial       int   `json:"partial"`
	Pending       int   `json:"pending"`
	ChunksChecked int64 `json:"chunks_checked"`
}

// Report is an integrity report of one repository. Build it, then Sign it;
// Sign calls Finalize.
type Report struct {
	Format     string    `json:"format"`     // ReportFormat
	Repository string    `json:"repository"` // repository ID
	Appliance  string    `json:"appliance"`  // host name of the appliance
	Generated  time.Time `json:"generated"`
	Since      time.Time `json:"since,omitzero"` // zero (omitted): all points
	// KeyID is the KeyID of the signing key; Sign sets it.
	KeyID   string        `json:"key_id"`
	Summary Summary       `json:"summary"` // computed by Finalize
	Points  []PointResult `json:"points"`
}

// Finalize puts r in the form that Sign encodes: every time in UTC without a
// monotonic reading, Points sorted by Time then ID (never nil), and Summary
// computed from Points. Results other than the four known ones are counted
// in Points only (and rejected by Sign).
func (r *Report) Finalize() {
	r.Generated = r.Generated.UTC()
	r.Since = r.Since.UTC()
	if r.Points == nil {
		r.Points = []PointResult{}
	}
	for i := range r.Points {
		p := &r.Points[i]
		p.Time = p.Time.UTC()
		p.VerifiedAt = p.VerifiedAt.UTC()
	}
	slices.SortStableFunc(r.Points, func(a, b PointResult) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	r.Summary = summarize(r.Points)
}

func summarize(points []PointResult) Summary {
	s := Summary{Points: len(points)}
	for _, p := range points {
		switch p.Result {
		case ResultPassed:
			s.Passed++
		case ResultFailed:
			s.Failed++
		case ResultPartial:
			s.Partial++
		case ResultPending:
			s.Pending++
		}
		s.ChunksChecked += p.ChunksChecked
	}
	return s
}

// validate checks the fields Sign and Verify insist on.
func (r *Report) validate() error {
	switch {
	case r.Format != ReportFormat:
		return fmt.Errorf("format is %s, want %q", quote(r.Format), ReportFormat)
	case r.Repository == "":
		return fmt.Errorf("repository is empty")
	case r.Appliance == "":
		return fmt.Errorf("appliance is empty")
	case r.Generated.IsZero():
		return fmt.Errorf("generated time is zero")
	}
	seen := make(map[string]struct{}, len(r.Points))
	for i, p := range r.Points {
		if err := p.validate(); err != nil {
			return fmt.Errorf("point %d (%s): %w", i, quote(p.ID), err)
		}
		if _, dup := seen[p.ID]; dup {
			return fmt.Errorf("point %d: duplicate id %s", i, quote(p.ID))
		}
		seen[p.ID] = struct{}{}
	}
	return nil
}

func (p *PointResult) validate() error {
	switch {
	case p.ID == "":
		return fmt.Errorf("empty id")
	case p.ChunksChecked < 0:
		return fmt.Errorf("negative chunks_checked")
	}
	switch p.Mode {
	case ModeReadData, ModeSample, ModeIndex, ModeNever:
	default:
		return fmt.Errorf("unknown mode %s", quote(p.Mode))
	}
	switch p.Result {
	case ResultPassed, ResultFailed, ResultPartial, ResultPending:
	default:
		return fmt.Errorf("unknown result %s", quote(p.Result))
	}
	return nil
}

// encode returns the deterministic JSON encoding of r: two-space indent and
// a final newline.
func (r *Report) encode() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeReport parses a report strictly: one JSON value, no duplicate keys,
// no unknown members, valid fields and a summary that matches the points.
func decodeReport(data []byte) (*Report, error) {
	if err := checkJSON(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if got := summarize(r.Points); got != r.Summary {
		return nil, fmt.Errorf("summary %+v does not match the points (%+v)", r.Summary, got)
	}
	return &r, nil
}

// quote returns s quoted and cut to a readable length, so error messages
// never carry long or raw attacker-chosen bytes.
func quote(s string) string {
	const maxLen = 40
	if len(s) > maxLen {
		return fmt.Sprintf("%q...", s[:maxLen])
	}
	return fmt.Sprintf("%q", s)
}
