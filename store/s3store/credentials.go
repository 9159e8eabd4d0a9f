package s3store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ErrNoCredentials is wrapped by CredentialsFromEnv when a required
// variable is unset or empty.
var ErrNoCredentials = errors.New("s3 credentials missing")

// Credentials authenticate requests. The secret parts never appear in the
// output of String, GoString or slog: printing a Credentials value is safe.
type Credentials struct {
	AccessKey, SecretKey, SessionToken, Region string
}

// CredentialsFromEnv reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
// optional AWS_SESSION_TOKEN and region (AWS_REGION, else
// AWS_DEFAULT_REGION) through getenv. It fails, naming the variables but
// never their values, when the key id or the secret is missing.
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	c := Credentials{
		AccessKey:    strings.TrimSpace(getenv("AWS_ACCESS_KEY_ID")),
		SecretKey:    strings.TrimSpace(getenv("AWS_SECRET_ACCESS_KEY")),
		SessionToken: strings.TrimSpace(getenv("AWS_SESSION_TOKEN")),
		Region:       strings.TrimSpace(getenv("AWS_REGION")),
	}
	if c.Region == "" {
		c.Region = strings.TrimSpace(getenv("AWS_DEFAULT_REGION"))
	}
	var missing []string
	if c.AccessKey == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID")
	}
	if c.SecretKey == "" {
		missing = append(missing, "AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("%w: set %s in the environment", ErrNoCredentials, strings.Join(missing, " and "))
	}
	return c, nil
}

// String shows the access key id and region only.
func (c Credentials) String() string {
	s := fmt.Sprintf("access key %q, secret %s", c.AccessKey, redacted(c.SecretKey))
	if c.SessionToken != "" {
		s += ", session token " + redacted(c.SessionToken)
	}
	if c.Region != "" {
		s += fmt.Sprintf(", region %q", c.Region)
	}
	return s
}

// GoString keeps %#v from printing the secret.
func (c Credentials) GoString() string { return "s3store.Credentials{" + c.String() + "}" }

// LogValue keeps slog from printing the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key", c.AccessKey),
		slog.String("secret_key", redacted(c.SecretKey)),
		slog.String("region", c.Region),
	)
}

func redacted(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(redacted)"
}
