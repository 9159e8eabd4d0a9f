package retention

import (
	"errors"
	"fmt"
)

var (
	// ErrNoRule is returned by Rules.Validate when every rule is zero.
	ErrNoRule = errors.New("no keep rule given: refusing to remove every point")
	// ErrRange is wrapped by Rules.Validate for each rule outside its range.
	ErrRange = errors.New("keep rule out of range")
)

// Rules is a Grandfather-Father-Son retention policy: how many points or
// calendar buckets each rule keeps. Zero turns a rule off. The zero value
// keeps nothing and is refused by Validate; Defaults gives the policy
// defaults.
type Rules struct {
	Last    int // the N newest points; 0..10000
	Hourly  int // the newest point of each of the N newest hours; 0..8760
	Daily   int // ... of each of the N newest days; 0..365
	Weekly  int // ... of each of the N newest ISO weeks; 0..52
	Monthly int // ... of each of the N newest months; 0..120
	Yearly  int // ... of each of the N newest years; 0..100
}

// Defaults returns the policy defaults: Daily 7, Weekly 4, Monthly 12.
func Defaults() Rules {
	return Rules{Daily: 7, Weekly: 4, Monthly: 12}
}

// rule is one field of Rules with its name (as the command line spells it)
// and its allowed maximum.
type rule struct {
	name string
	n    int
	max  int
}

// fields lists the rules in reason order. The policy form limits Daily to
// 1..365 (default 7); 0 is allowed here because the command line may give
// only other rules.
func (r Rules) fields() [6]rule {
	return [6]rule{
		{"keep-last", r.Last, 10000},
		{"keep-hourly", r.Hourly, 8760},
		{"keep-daily", r.Daily, 365},
		{"keep-weekly", r.Weekly, 52},
		{"keep-monthly", r.Monthly, 120},
		{"keep-yearly", r.Yearly, 100},
	}
}

// Validate reports every rule outside its range (each error wraps ErrRange)
// and refuses rules that keep nothing (ErrNoRule).
func (r Rules) Validate() error {
	var errs []error
	some := false
	for _, f := range r.fields() {
		if f.n < 0 || f.n > f.max {
			errs = append(errs, fmt.Errorf("%w: %s %d, allowed 0..%d", ErrRange, f.name, f.n, f.max))
		}
		some = some || f.n != 0
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !some {
		return ErrNoRule
	}
	return nil
}
