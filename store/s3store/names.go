package s3store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadName is wrapped by every error about a malformed pack name or file key.
var ErrBadName = errors.New("invalid name")

const (
	// PackNameLen is the length of a pack name: 32 lowercase hex characters.
	PackNameLen = 32
	// maxFileKeyLen keeps PREFIX/KEY under the 1024-byte S3 key limit.
	maxFileKeyLen = 400
	packsDir      = "packs"
)

// CheckPackName reports whether name is 32 lowercase hex characters.
func CheckPackName(name string) error {
	if len(name) != PackNameLen {
		return fmt.Errorf("%w: pack name %q: want %d lowercase hex characters, have %d bytes",
			ErrBadName, clip(name), PackNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: pack name %q: byte %d is not lowercase hex", ErrBadName, clip(name), i)
		}
	}
	return nil
}

// CheckFileKey reports whether key is a usable file key: slash-separated
// segments of printable UTF-8, none empty, "." or "..", no leading or
// trailing slash, no backslash, and not inside the "packs/" area.
func CheckFileKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: file key %q: %s", ErrBadName, clip(key), why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > maxFileKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxFileKeyLen))
	case !utf8.ValidString(key):
		return bad("not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("leading slash")
	case strings.HasSuffix(key, "/"):
		return bad("trailing slash")
	case strings.ContainsRune(key, '\\'):
		return bad("backslash")
	case strings.IndexFunc(key, isControl) >= 0:
		return bad("control character")
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return bad("empty segment (double slash)")
		case ".", "..":
			return bad(fmt.Sprintf("segment %q", seg))
		}
	}
	if key == packsDir || strings.HasPrefix(key, packsDir+"/") {
		return bad(`"packs/" is reserved for packs`)
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// clip shortens a caller-supplied string for an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// packKey is PREFIX/packs/<first two hex chars>/<name>. name must be valid.
func (s *Store) packKey(name string) string {
	return s.objectKey(packsDir + "/" + name[:2] + "/" + name)
}

// packsPrefix is the key prefix under which every pack lives.
func (s *Store) packsPrefix() string {
	return s.objectKey(packsDir + "/")
}

// objectKey puts rel under the location prefix.
func (s *Store) objectKey(rel string) string {
	if s.loc.Prefix == "" {
		return rel
	}
	return s.loc.Prefix + "/" + rel
}
