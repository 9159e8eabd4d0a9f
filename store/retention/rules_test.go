package retention

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	want := Rules{Daily: 7, Weekly: 4, Monthly: 12}
	if got := Defaults(); got != want {
		t.Fatalf("Defaults() = %+v, want %+v", got, want)
	}
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		wantErr error  // nil: valid
		wantMsg string // substring of the error text
	}{
		{"defaults", Defaults(), nil, ""},
		{"daily 0 with weekly", Rules{Weekly: 1}, nil, ""},
		{"last only", Rules{Last: 1}, nil, ""},
		{"all at max", Rules{Last: 10000, Hourly: 8760, Daily: 365, Weekly: 52, Monthly: 120, Yearly: 100}, nil, ""},
		{"all zero", Rules{}, ErrNoRule, "no keep rule given: refusing to remove every point"},
		{"last -1", Rules{Last: -1, Daily: 7}, ErrRange, "keep-last -1, allowed 0..10000"},
		{"last 10001", Rules{Last: 10001}, ErrRange, "keep-last 10001, allowed 0..10000"},
		{"hourly -1", Rules{Hourly: -1, Daily: 7}, ErrRange, "keep-hourly -1"},
		{"hourly 8761", Rules{Hourly: 8761}, ErrRange, "keep-hourly 8761, allowed 0..8760"},
		{"daily -1", Rules{Daily: -1, Weekly: 4}, ErrRange, "keep-daily -1"},
		{"daily 366", Rules{Daily: 366}, ErrRange, "keep-daily 366, allowed 0..365"},
		{"weekly 53", Rules{Weekly: 53}, ErrRange, "keep-weekly 53, allowed 0..52"},
		{"weekly -1", Rules{Weekly: -1, Daily: 1}, ErrRange, "keep-weekly -1"},
		{"monthly 121", Rules{Monthly: 121}, ErrRange, "keep-monthly 121, allowed 0..120"},
		{"monthly -1", Rules{Monthly: -1, Daily: 1}, ErrRange, "keep-monthly -1"},
		{"yearly 101", Rules{Yearly: 101}, ErrRange, "keep-yearly 101, allowed 0..100"},
		{"yearly -1", Rules{Yearly: -1, Daily: 1}, ErrRange, "keep-yearly -1"},
		{"negative only", Rules{Daily: -7}, ErrRange, "keep-daily -7"}, // range first, not ErrNoRule
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want errors.Is %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidateReportsEveryBadRule(t *testing.T) {
	err := Rules{Daily: 400, Weekly: 60}.Validate()
	if !errors.Is(err, ErrRange) {
		t.Fatalf("Validate() = %v, want ErrRange", err)
	}
	for _, s := range []string{"keep-daily 400", "keep-weekly 60"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Validate() = %q, missing %q", err, s)
		}
	}
}
