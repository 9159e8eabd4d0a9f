package crypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// External KEK providers (the control plane's account key, a PAM vault)
// hand BES a secret through a command: the command prints the secret (at
// least 16 bytes; a final newline is dropped), and the KEK is derived from
// it with a random salt kept in the slot, under a context bound to the
// provider's name. The secret itself is never stored.
const ctxCommandKEK = "bes 2024 command KEK v1"

// ExternalProviders are the names an external (command) KEK provider may
// take.
var ExternalProviders = []string{"account", "pam_vault", "command"}

type commandParams struct {
	Salt []byte `json:"salt"`
}

type commandKEK struct {
	name    string
	command string
	timeout time.Duration
}

// Command returns an external KEK provider named name (one of
// ExternalProviders) that runs command with /bin/sh -c to obtain its secret.
func Command(name, command string) (KEKProvider, error) {
	ok := false
	for _, n := range ExternalProviders {
		ok = ok || n == name
	}
	if !ok {
		return nil, fmt.Errorf("KEK provider %q: want one of %v", name, ExternalProviders)
	}
	if command == "" {
		return nil, fmt.Errorf("KEK provider %s: no command given", name)
	}
	return &commandKEK{name: name, command: command, timeout: time.Minute}, nil
}

func (c *commandKEK) Name() string { return c.name }

func (c *commandKEK) NewKEK(ctx context.Context) ([]byte, json.RawMessage, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, nil, err
	}
	params, err := json.Marshal(commandParams{Salt: salt})
	if err != nil {
		return nil, nil, err
	}
	kek, err := c.derive(ctx, salt)
	return kek, params, err
}

func (c *commandKEK) KEK(ctx context.Context, params json.RawMessage) ([]byte, error) {
	var p commandParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, fmt.Errorf("bad slot params: %v", err)
	}
	if len(p.Salt) != 32 {
		return nil, fmt.Errorf("bad slot params: salt has %d bytes, want 32", len(p.Salt))
	}
	return c.derive(ctx, p.Salt)
}

func (c *commandKEK) derive(ctx context.Context, salt []byte) ([]byte, error) {
	secret, err := c.secret(ctx)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	material := append(append(bytes.Clone(salt), c.name...), secret...)
	defer clear(material)
	kek := make([]byte, 32)
	deriveKey(ctxCommandKEK, material, kek)
	return kek, nil
}

// secret runs the command; its error output is not shown (it may echo the
// secret), only the exit status.
func (c *commandKEK) secret(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.command)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("KEK provider %s: the secret command failed (exit status %d)", c.name, ee.ExitCode())
		}
		return nil, fmt.Errorf("KEK provider %s: the secret command: %w", c.name, err)
	}
	b := bytes.TrimSuffix(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\r"))
	if len(b) < 16 {
		clear(out.Bytes())
		return nil, fmt.Errorf("KEK provider %s: the secret command printed %d bytes, want at least 16", c.name, len(b))
	}
	secret := bytes.Clone(b)
	clear(out.Bytes())
	return secret, nil
}
