package tlsutil

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// errIncomplete: cert.pem or key.pem (or both) is missing.
var errIncomplete = errors.New("certificate or key missing")

// loadPair reads and checks dir's pair. It returns errIncomplete when a
// file is missing, before looking at the other's content.
func loadPair(dir string) (*tls.Certificate, error) {
	keyPEM, err := readKeyFile(keyPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errIncomplete
	}
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errIncomplete
	}
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	chain, leaf, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w", certPath(dir), err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w", keyPath(dir), err)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("tlsutil: %s and %s: %w", certPath(dir), keyPath(dir), ErrKeyMismatch)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// readKeyFile reads path after checking, on the open file, that group and
// other have no access to it.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("tlsutil: %s has mode %04o (fix with chmod 600): %w", path, perm, ErrKeyPermissions)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	return b, nil
}

// parseCerts returns every CERTIFICATE block (leaf first) and the parsed leaf.
func parseCerts(data []byte) ([][]byte, *x509.Certificate, error) {
	var chain [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("no CERTIFICATE block: %w", ErrBadPEM)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	return chain, leaf, nil
}

// parseKey accepts PKCS#8 (what we write) and the SEC1/PKCS#1 forms an
// operator's own key may come in.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("no private key block: %w", ErrBadPEM)
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key type %T cannot sign: %w", key, ErrBadPEM)
		}
		return s, nil
	}
}
