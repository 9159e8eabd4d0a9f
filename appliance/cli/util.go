package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

func jsonLine(w io.Writer) *json.Encoder { return json.NewEncoder(w) }

// parseTime reads a time given on the command line: RFC 3339, or a local
// date with an optional time of day (2026-11-20, 2026-11-20T14:30,
// 2026-11-20 14:30:00).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-20T02:00:00Z) or a local YYYY-MM-DD[THH:MM[:SS]]", s)
}

// timeFlag is a pflag.Value for a time (see parseTime).
type timeFlag struct{ t *time.Time }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f timeFlag) Set(s string) error {
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	*f.t = t
	return nil
}

func (f timeFlag) Type() string { return "time" }
