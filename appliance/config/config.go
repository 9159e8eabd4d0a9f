// Package config reads the appliance's configuration: a TOML file
// (bes serve --config FILE, or $BES_CONFIG), then environment variables,
// then command-line flags, each overriding the one before. Unknown keys are
// errors, except inside the sections that later parts of the appliance own
// (pxe, cloudlink), which are kept for them.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/robfig/cron/v3"
)

// Config is the appliance configuration.
type Config struct {
	DataDir  string `toml:"data_dir"`
	Listen   string `toml:"listen"`
	TimeZone string `toml:"time_zone"` // IANA name; "" is the system's
	TLS      struct {
		Cert string `toml:"cert"` // operator-provided certificate (PEM); "" makes a self-signed one
		Key  string `toml:"key"`
	} `toml:"tls"`
	Jobs struct {
		AutoRetry  *bool    `toml:"auto_retry"`  // default true
		GCSchedule string   `toml:"gc_schedule"` // cron; default "30 4 * * *"
		StopGrace  duration `toml:"stop_grace"`  // how long a running job may finish after SIGTERM; default 10s
	} `toml:"jobs"`
	Capacity struct {
		Interval duration `toml:"interval"` // default 5m
	} `toml:"capacity"`
	PXE       map[string]any `toml:"pxe"`
	Cloudlink map[string]any `toml:"cloudlink"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Default returns the embedded defaults.
func Default() *Config {
	c := &Config{DataDir: "bes-data", Listen: "127.0.0.1:8443"}
	t := true
	c.Jobs.AutoRetry = &t
	c.Jobs.GCSchedule = "30 4 * * *"
	c.Jobs.StopGrace = duration{10 * time.Second}
	c.Capacity.Interval = duration{5 * time.Minute}
	return c
}

// Load reads the defaults, then the file at path (if not ""), then the
// environment (BES_DATA, BES_LISTEN, BES_TZ).
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, c)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		for _, k := range md.Undecoded() {
			if top := k[0]; top != "pxe" && top != "cloudlink" {
				return nil, fmt.Errorf("config %s: unknown key %q", path, k.String())
			}
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, e := range []struct {
		name string
		dst  *string
	}{{"BES_DATA", &c.DataDir}, {"BES_LISTEN", &c.Listen}, {"BES_TZ", &c.TimeZone}} {
		if v := getenv(e.name); v != "" {
			*e.dst = v
		}
	}
	return c, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is empty")
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		return fmt.Errorf("config: listen %q: want HOST:PORT", c.Listen)
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			return fmt.Errorf("config: time_zone %q: %w", c.TimeZone, err)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("config: tls.cert and tls.key go together")
	}
	if c.Jobs.GCSchedule != "" {
		if _, err := cron.ParseStandard(c.Jobs.GCSchedule); err != nil {
			return fmt.Errorf("config: jobs.gc_schedule %q: %w", c.Jobs.GCSchedule, err)
		}
	}
	if c.Capacity.Interval.Duration < time.Second {
		return fmt.Errorf("config: capacity.interval %s: at least 1s", c.Capacity.Interval.Duration)
	}
	return nil
}

// Location returns the configured time zone (the system's when unset).
func (c *Config) Location() *time.Location {
	if c.TimeZone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.Local
	}
	return loc
}
