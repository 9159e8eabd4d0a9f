package s3store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestCheckPackName(t *testing.T) {
	if err := CheckPackName("0123456789abcdef0123456789abcdef"); err != nil {
		t.Errorf("good name rejected: %v", err)
	}
	for _, n := range badPackNames {
		if err := CheckPackName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckPackName(%q) = %v, want ErrBadName", n, err)
		}
	}
}

var badPackNames = []string{
	"",
	"0123456789abcdef0123456789abcde",   // 31
	"0123456789abcdef0123456789abcdef0", // 33
	"0123456789ABCDEF0123456789abcdef",
	"0123456789abcdeg0123456789abcdef",
	"../3456789abcdef0123456789abcdef",
	"01/3456789abcdef0123456789abcdef",
}

func TestCheckFileKey(t *testing.T) {
	for _, k := range []string{"config.json", "keys/abc.json", "a/b/c", "index/0001.idx", "packsx"} {
		if err := CheckFileKey(k); err != nil {
			t.Errorf("CheckFileKey(%q) = %v", k, err)
		}
	}
	for _, k := range badFileKeys {
		if err := CheckFileKey(k); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckFileKey(%q) = %v, want ErrBadName", k, err)
		}
	}
}

var badFileKeys = []string{
	"", "/config.json", "keys/", "a//b", "..", "a/../b", "./a", "a/.", `a\b`,
	"a\x00b", "a\nb", "packs", "packs/ab/x", "\xff", strings.Repeat("k", maxFileKeyLen+1),
}

func TestCredentialsFromEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
		"AWS_SESSION_TOKEN":     "tok3n-value",
		"AWS_DEFAULT_REGION":    "eu-west-1",
	}
	c, err := CredentialsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{AccessKey: "AKIDEXAMPLE", SecretKey: "s3cr3t-value", SessionToken: "tok3n-value", Region: "eu-west-1"}
	if c != want {
		t.Errorf("got %v, want %v", c, want)
	}
	env["AWS_REGION"] = "us-west-2"
	if c, _ := CredentialsFromEnv(func(k string) string { return env[k] }); c.Region != "us-west-2" {
		t.Errorf("AWS_REGION should win over AWS_DEFAULT_REGION, got %q", c.Region)
	}
	// Printing credentials in any way must not show the secrets.
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "cred", c)
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), sb.String()} {
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "tok3n") {
			t.Errorf("secret leaked: %s", out)
		}
	}

	for _, missing := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		e := map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
		delete(e, missing)
		_, err := CredentialsFromEnv(func(k string) string { return e[k] })
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: err = %v", missing, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("secret leaked: %v", err)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		h            string
		start, total int64
		ok           bool
	}{
		{"", -1, -1, true},
		{"bytes 0-99/200", 0, 200, true},
		{"bytes 100-199/*", 100, -1, true},
		{"bytes 5-4", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes x-1/2", 0, 0, false},
		{"bytes -1-1/2", 0, 0, false},
	} {
		start, total, err := parseContentRange(tc.h)
		if (err == nil) != tc.ok || (tc.ok && (start != tc.start || total != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tc.h, start, total, err)
		}
	}
}
