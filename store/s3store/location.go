package s3store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadLocation is wrapped by every error ParseURL returns.
var ErrBadLocation = errors.New("invalid s3 repository address")

// Location is a parsed repository address.
type Location struct {
	// Endpoint is "host" or "host:port" (IPv6 literals in brackets), as
	// minio-go expects it.
	Endpoint string
	// Secure selects https.
	Secure bool
	// Bucket is a valid S3 bucket name.
	Bucket string
	// Prefix is "" or slash-separated segments with no leading or trailing
	// slash, e.g. "site1/bes".
	Prefix string
}

// String renders the location in the form ParseURL accepts; ParseURL of the
// result yields the same Location.
func (l Location) String() string {
	scheme := "http"
	if l.Secure {
		scheme = "https"
	}
	s := "s3:" + scheme + "://" + l.Endpoint + "/" + l.Bucket
	if l.Prefix != "" {
		s += "/" + l.Prefix
	}
	return s
}

// ParseURL parses a restic-style address "s3:http://HOST[:PORT]/BUCKET[/PREFIX]"
// or "s3:https://...". The prefix may have several segments; a single
// trailing slash is ignored. Credentials, queries, fragments, percent
// escapes, empty segments and "." or ".." segments are rejected.
func ParseURL(s string) (Location, error) {
	loc, err := parseURL(s)
	if err != nil {
		return Location{}, fmt.Errorf("%w %q: %s", ErrBadLocation, redactURL(s), err)
	}
	return loc, nil
}

func parseURL(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return Location{}, errors.New(`must start with "s3:http://" or "s3:https://"`)
	}
	var loc Location
	switch {
	case strings.HasPrefix(rest, "https://"):
		loc.Secure = true
	case strings.HasPrefix(rest, "http://"):
	default:
		return Location{}, errors.New(`scheme must be "http://" or "https://" after "s3:"`)
	}
	if strings.ContainsAny(rest, "%\\") {
		return Location{}, errors.New("percent escapes and backslashes are not supported")
	}
	if strings.IndexFunc(rest, isControlOrSpace) >= 0 {
		return Location{}, errors.New("contains spaces or control characters")
	}
	u, err := url.Parse(rest)
	if err != nil {
		return Location{}, errors.New("not a valid URL")
	}
	if u.User != nil {
		return Location{}, errors.New("credentials must not be part of the address; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return Location{}, errors.New("query and fragment are not allowed")
	}
	if err := checkHost(u); err != nil {
		return Location{}, err
	}
	loc.Endpoint = u.Host
	loc.Bucket, loc.Prefix, err = splitPath(u.Path)
	if err != nil {
		return Location{}, err
	}
	return loc, nil
}

func isControlOrSpace(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func checkHost(u *url.URL) error {
	host := u.Hostname()
	if host == "" {
		return errors.New("host is empty")
	}
	if strings.HasPrefix(u.Host, "[") {
		if net.ParseIP(host) == nil {
			return errors.New("bad IPv6 address in brackets")
		}
	} else if !validHostname(host) {
		return fmt.Errorf("bad host name %q", host)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port %q", p)
		}
	}
	return nil
}

// validHostname accepts DNS names and IPv4 literals: letters, digits,
// hyphens and dots, labels 1-63 long, not starting or ending with a hyphen.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isLowerAlnum(c) && !(c >= 'A' && c <= 'Z') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func splitPath(p string) (bucket, prefix string, err error) {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", "", errors.New("bucket name is missing")
	}
	segs := strings.Split(p, "/")
	for _, seg := range segs {
		if err := checkSegment(seg); err != nil {
			return "", "", err
		}
	}
	if err := checkBucketName(segs[0]); err != nil {
		return "", "", err
	}
	prefix = strings.Join(segs[1:], "/")
	if len(prefix) > maxPrefixLen {
		return "", "", fmt.Errorf("prefix longer than %d bytes", maxPrefixLen)
	}
	return segs[0], prefix, nil
}

// maxPrefixLen leaves room under the 1024-byte S3 key limit for the
// "/packs/xx/<32 hex>" suffix and file keys.
const maxPrefixLen = 512

func checkSegment(seg string) error {
	switch seg {
	case "":
		return errors.New("empty path segment (double slash)")
	case ".", "..":
		return fmt.Errorf("path segment %q is not allowed", seg)
	}
	return nil
}

// checkBucketName applies the S3 general purpose bucket naming rules.
func checkBucketName(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !isLowerAlnum(c) && c != '-' && c != '.' {
			return fmt.Errorf("bucket name %q may contain only lowercase letters, digits, '.' and '-'", b)
		}
	}
	if !isLowerAlnum(b[0]) || !isLowerAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket name %q must begin and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return fmt.Errorf("bucket name %q has adjacent '.' or '.-' sequences", b)
	}
	if ip := net.ParseIP(b); ip != nil {
		return fmt.Errorf("bucket name %q must not be an IP address", b)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return fmt.Errorf("bucket name %q must not start with %q", b, p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return fmt.Errorf("bucket name %q must not end with %q", b, s)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

// redactURL hides a user-info part ("user:secret@") so that a mistyped
// address with credentials in it never reaches an error message or a log.
func redactURL(s string) string {
	scheme := strings.Index(s, "://")
	if scheme < 0 {
		return s
	}
	rest := s[scheme+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		return s[:scheme+3] + "REDACTED@" + rest[at+1:]
	}
	return s
}
