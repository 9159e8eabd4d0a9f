package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "bes.toml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := Load("", env(nil))
	if err != nil || c.Listen != "127.0.0.1:8443" || !*c.Jobs.AutoRetry || c.Capacity.Interval.Duration != 5*time.Minute || c.Validate() != nil {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	p := write(`data_dir = "/var/lib/bes"
listen = "0.0.0.0:9443"
time_zone = "Europe/Berlin"
[jobs]
auto_retry = false
gc_schedule = "0 5 * * 1-6"
[capacity]
interval = "1m"
[pxe]
enabled = true
network = "10.0.0.0/24"
`)
	c, err = Load(p, env(map[string]string{"BES_LISTEN": "127.0.0.1:7443"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/bes" || c.Listen != "127.0.0.1:7443" || *c.Jobs.AutoRetry || c.Capacity.Interval.Duration != time.Minute || c.PXE["network"] != "10.0.0.0/24" {
		t.Fatalf("file+env: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{`lisen = "x"`, "unknown key"},
		{`[jobs]` + "\n" + `gc_scheduel = "x"`, "unknown key"},
		{`listen = 5`, "config"},
		{`listen = "nocolon"`, "HOST:PORT"},
		{`time_zone = "Mars/Olympus"`, "time_zone"},
		{`[tls]` + "\n" + `cert = "/c.pem"`, "go together"},
		{`[jobs]` + "\n" + `gc_schedule = "0 25 * * *"`, "gc_schedule"},
		{`[capacity]` + "\n" + `interval = "fast"`, "config"},
		{`data_dir = `, "config"},
	} {
		c, err := Load(write(tc.file), env(nil))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.file, err, tc.want)
		}
	}
}
