package tlsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// tempPrefix names the temporary files of name; leftovers of a crash are
// recognised by it and swept on the next LoadOrCreate.
func tempPrefix(name string) string { return "." + name + ".tmp-" }

// swapPair installs a new pair durably. Order: both temp files written and
// fsynced; cert.pem then key.pem moved to .old; new key.pem then new
// cert.pem renamed in; directory fsynced. A crash at any step leaves the
// old pair, the new pair, or a pair with a file missing (regenerated on
// the next start), never a certificate next to a key not its own.
func swapPair(dir string, certPEM, keyPEM []byte) (err error) {
	tmpKey, err := writeTemp(dir, KeyFile, keyPEM, 0o600)
	if err != nil {
		return err
	}
	defer removeOnError(&err, tmpKey)
	tmpCert, err := writeTemp(dir, CertFile, certPEM, 0o644)
	if err != nil {
		return err
	}
	defer removeOnError(&err, tmpCert)
	for _, p := range []string{certPath(dir), keyPath(dir)} {
		if err := os.Rename(p, p+OldSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tlsutil: keep old file: %w", err)
		}
	}
	if err := os.Rename(tmpKey, keyPath(dir)); err != nil {
		return fmt.Errorf("tlsutil: install key: %w", err)
	}
	if err := os.Rename(tmpCert, certPath(dir)); err != nil {
		return fmt.Errorf("tlsutil: install certificate: %w", err)
	}
	return syncDir(dir)
}

// writeTemp writes data to a new temporary file for name in dir with mode
// perm, fsynced and closed, and returns its path.
func writeTemp(dir, name string, data []byte, perm os.FileMode) (path string, err error) {
	f, err := os.CreateTemp(dir, tempPrefix(name))
	if err != nil {
		return "", fmt.Errorf("tlsutil: %w", err)
	}
	path = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
			err = fmt.Errorf("tlsutil: write %s: %w", path, err)
		}
	}()
	// Chmod before writing, so a key is never readable by others.
	if err := f.Chmod(perm); err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return path, f.Close()
}

func removeOnError(err *error, path string) {
	if *err != nil {
		os.Remove(path)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("tlsutil: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("tlsutil: sync %s: %w", dir, err)
	}
	return nil
}

// sweepTemps removes temporary files left by an interrupted swap.
func sweepTemps(dir string) {
	for _, name := range []string{CertFile, KeyFile} {
		matches, _ := filepath.Glob(filepath.Join(dir, tempPrefix(name)+"*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}
