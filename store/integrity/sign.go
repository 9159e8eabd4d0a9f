package integrity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrBadSignature means the signature does not match the report: the
	// report or signature was altered, or it was signed by another key than
	// the trusted one.
	ErrBadSignature = errors.New("integrity: bad signature")
	// ErrMalformed means a signature document or a (correctly signed)
	// report cannot be read: bad JSON, unknown format or algorithm, wrong
	// lengths, inconsistent fields.
	ErrMalformed = errors.New("integrity: malformed document")
)

// maxSignatureDoc bounds the signature document; a real one is ~250 bytes.
const maxSignatureDoc = 4096

// b64 is standard base64 with padding, strict: non-zero padding bits are
// rejected, so each signature has exactly one accepted encoding.
var b64 = base64.StdEncoding.Strict()

// signatureDoc is the detached signature document.
type signatureDoc struct {
	Format    string `json:"format"`
	Algorithm string `json:"algorithm"`
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// Verified is the outcome of a successful Verify.
type Verified struct {
	Report *Report
	KeyID  string // KeyID of the key that signed
	// Trusted is true when Verify was given the trusted key. False means
	// only that the report matches the key embedded in its signature, which
	// anyone can make: compare KeyID with the appliance's fingerprint.
	Trusted bool
}

// SignatureFile returns the conventional path of the detached signature of
// the report at reportPath: reportPath + ".sig".
func SignatureFile(reportPath string) string { return reportPath + ".sig" }

// Sign finalizes r (Finalize), sets r.Format when empty and r.KeyID to the
// key's KeyID, checks r, and returns its JSON encoding and the detached
// signature document over exactly those bytes. The same report and key
// always give the same bytes (Ed25519 signatures are deterministic).
func Sign(r *Report, key ed25519.PrivateKey) (reportJSON, signature []byte, err error) {
	pub, err := publicOf(key)
	if err != nil {
		return nil, nil, err
	}
	if r.Format == "" {
		r.Format = ReportFormat
	}
	r.KeyID = KeyID(pub)
	r.Finalize()
	if err := r.validate(); err != nil {
		return nil, nil, fmt.Errorf("integrity: sign report: %w", err)
	}
	reportJSON, err = r.encode()
	if err != nil {
		return nil, nil, fmt.Errorf("integrity: encode report: %w", err)
	}
	doc := signatureDoc{
		Format:    SignatureFormat,
		Algorithm: Algorithm,
		KeyID:     r.KeyID,
		PublicKey: b64.EncodeToString(pub),
		Signature: b64.EncodeToString(ed25519.Sign(key, reportJSON)),
	}
	signature, err = json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("integrity: encode signature: %w", err)
	}
	return reportJSON, append(signature, '\n'), nil
}

// publicOf returns the public half of key after checking that key is a
// well-formed Ed25519 private key (its public half matches its seed).
func publicOf(key ed25519.PrivateKey) (ed25519.PublicKey, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("integrity: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub := ed25519.NewKeyFromSeed(key.Seed()).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, key[ed25519.SeedSize:]) {
		return nil, errors.New("integrity: private key is inconsistent (public half does not match the seed)")
	}
	return pub, nil
}

// Verify checks reportJSON against its detached signature document and
// returns the decoded report. With trusted non-nil the report must be signed
// by that key (the appliance's public key) and the result is Trusted; with
// trusted nil the key embedded in the signature document is used and the
// result is not Trusted.
//
// Errors: ErrBadSignature (wrapped, with the key IDs) when the signature
// does not verify or was made by another key than trusted; ErrMalformed
// (wrapped, saying what) for an unreadable signature document, or for a
// report that is correctly signed but not a valid report; a trusted key that
// is not 32 bytes long is a plain error. The signature is checked before the
// report is parsed.
func Verify(reportJSON, signature []byte, trusted ed25519.PublicKey) (*Verified, error) {
	if trusted != nil && len(trusted) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("integrity: trusted key has %d bytes, want %d", len(trusted), ed25519.PublicKeySize)
	}
	pub, sig, err := parseSignature(signature)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	id := KeyID(pub)
	if trusted != nil && !bytes.Equal(pub, trusted) {
		return nil, fmt.Errorf("%w: signed by key %s, not by the trusted key %s", ErrBadSignature, id, KeyID(trusted))
	}
	if !ed25519.Verify(pub, reportJSON, sig) {
		return nil, fmt.Errorf("%w: report does not match its signature by key %s (altered report or signature)", ErrBadSignature, id)
	}
	r, err := decodeReport(reportJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: report: %w", ErrMalformed, err)
	}
	if r.KeyID != id {
		return nil, fmt.Errorf("%w: report names key %s but is signed by key %s", ErrMalformed, quote(r.KeyID), id)
	}
	return &Verified{Report: r, KeyID: id, Trusted: trusted != nil}, nil
}

// parseSignature reads a signature document strictly and returns the
// public key and signature it carries.
func parseSignature(data []byte) (ed25519.PublicKey, []byte, error) {
	if len(data) > maxSignatureDoc {
		return nil, nil, fmt.Errorf("document is %d bytes, more than %d", len(data), maxSignatureDoc)
	}
	if err := checkJSON(data); err != nil {
		return nil, nil, err
	}
	var doc signatureDoc
	if err := decodeExact(data, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Format != SignatureFormat {
		return nil, nil, fmt.Errorf("format is %s, want %q", quote(doc.Format), SignatureFormat)
	}
	if doc.Algorithm != Algorithm {
		return nil, nil, fmt.Errorf("unsupported algorithm %s, want %q", quote(doc.Algorithm), Algorithm)
	}
	pub, err := decodeFixed("public_key", doc.PublicKey, ed25519.PublicKeySize)
	if err != nil {
		return nil, nil, err
	}
	sig, err := decodeFixed("signature", doc.Signature, ed25519.SignatureSize)
	if err != nil {
		return nil, nil, err
	}
	if want := KeyID(pub); doc.KeyID != want {
		return nil, nil, fmt.Errorf("key_id %s does not match public_key (key ID %s)", quote(doc.KeyID), want)
	}
	return pub, sig, nil
}

// decodeExact decodes the JSON object data into doc, requiring every member
// of doc's type, exactly spelled (encoding/json alone matches names without
// regard to case), and no other member.
func decodeExact(data []byte, doc *signatureDoc) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return err
	}
	fields := map[string]*string{
		"format": &doc.Format, "algorithm": &doc.Algorithm, "key_id": &doc.KeyID,
		"public_key": &doc.PublicKey, "signature": &doc.Signature,
	}
	for name := range members {
		if _, ok := fields[name]; !ok {
			return fmt.Errorf("unknown member %s", quote(name))
		}
	}
	for name, dst := range fields {
		raw, ok := members[name]
		if !ok {
			return fmt.Errorf("missing member %q", name)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
	}
	return nil
}

// decodeFixed decodes the strict base64 field s, which must hold exactly n
// bytes.
func decodeFixed(name, s string, n int) ([]byte, error) {
	if len(s) != b64.EncodedLen(n) {
		return nil, fmt.Errorf("%s is %d base64 characters, want %d (%d bytes)", name, len(s), b64.EncodedLen(n), n)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s is %d bytes, want %d", name, len(b), n)
	}
	return b, nil
}
