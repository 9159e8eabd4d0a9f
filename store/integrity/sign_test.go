package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// smallReport signs a one-point report: small enough to flip every byte.
func smallReport(t *testing.T) (rep, sig []byte) {
	t.Helper()
	r := &Report{Repository: "r1", Appliance: "bes", Generated: time.Unix(1700000000, 0),
		Points: []PointResult{{ID: "p1", Host: "h", Kind: "file", Type: "full", Time: time.Unix(1690000000, 0),
			VerifiedAt: time.Unix(1699000000, 0), Mode: ModeSample, Result: ResultFailed, ChunksChecked: 3,
			Damage: []string{"a/b: chunk 00ff: missing"}}}}
	rep, sig, err := Sign(r, testKey())
	if err != nil {
		t.Fatal(err)
	}
	return rep, sig
}

// signRaw makes a signature document over arbitrary bytes, to test how
// Verify treats correctly signed non-reports.
func signRaw(key ed25519.PrivateKey, data []byte) []byte {
	pub := pubOf(key)
	doc, _ := json.Marshal(signatureDoc{Format: SignatureFormat, Algorithm: Algorithm, KeyID: KeyID(pub),
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, data))})
	return doc
}

func TestSignVerify(t *testing.T) {
	rep, sig, err := Sign(fixedReport(), testKey())
	if err != nil {
		t.Fatal(err)
	}
	id := KeyID(pubOf(testKey()))
	v, err := Verify(rep, sig, pubOf(testKey()))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Trusted || v.KeyID != id || v.Report.KeyID != id || v.Report.Summary.Points != 4 {
		t.Errorf("trusted verify: %+v", v)
	}
	v, err = Verify(rep, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Trusted || v.KeyID != id {
		t.Errorf("untrusted verify: Trusted=%v KeyID=%s", v.Trusted, v.KeyID)
	}
	if len(id) != 32 {
		t.Errorf("KeyID %q is not 32 hex digits", id)
	}
}

func TestWrongTrustedKey(t *testing.T) {
	rep, sig := smallReport(t)
	_, err := Verify(rep, sig, pubOf(otherKey()))
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
	if !strings.Contains(err.Error(), KeyID(pubOf(otherKey()))) || !strings.Contains(err.Error(), KeyID(pubOf(testKey()))) {
		t.Errorf("error does not name both keys: %v", err)
	}
	if _, err := Verify(rep, sig, pubOf(testKey())[:31]); err == nil {
		t.Error("31-byte trusted key accepted")
	}
}

// A report re-signed by another key, with that key embedded, verifies only
// untrusted; against the appliance key it fails.
func TestResignedByOtherKey(t *testing.T) {
	r := fixedReport()
	rep, sig, err := Sign(r, otherKey())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(rep, sig, nil); err != nil || v.Trusted {
		t.Fatalf("untrusted: %v %+v", err, v)
	}
	if _, err := Verify(rep, sig, pubOf(testKey())); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("trusted: err = %v, want ErrBadSignature", err)
	}
}

func TestFlipEveryReportByte(t *testing.T) {
	rep, sig := smallReport(t)
	for i := range rep {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			bad := bytes.Clone(rep)
			bad[i] ^= mask
			for _, trusted := range []ed25519.PublicKey{nil, pubOf(testKey())} {
				if _, err := Verify(bad, sig, trusted); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("byte %d ^ %#x (trusted=%v): err = %v, want ErrBadSignature", i, mask, trusted != nil, err)
				}
			}
		}
	}
	for _, bad := range [][]byte{rep[:len(rep)-1], append(bytes.Clone(rep), '\n'), append([]byte(" "), rep...), nil} {
		if _, err := Verify(bad, sig, nil); !errors.Is(err, ErrBadSignature) {
			t.Errorf("truncated or extended report: err = %v, want ErrBadSignature", err)
		}
	}
}

// No single changed byte of the signature document is accepted: strict
// base64, exact member names and the key_id check leave no slack.
func TestFlipEverySignatureByte(t *testing.T) {
	rep, sig := smallReport(t)
	for i := range sig {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			bad := bytes.Clone(sig)
			bad[i] ^= mask
			_, err := Verify(rep, bad, nil)
			if err == nil {
				t.Fatalf("byte %d ^ %#x of the signature accepted", i, mask)
			}
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d ^ %#x: unclassified error %v", i, mask, err)
			}
		}
	}
}

func TestMalformedSignature(t *testing.T) {
	rep, sig := smallReport(t)
	var good map[string]any
	if err := json.Unmarshal(sig, &good); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	pub := pubOf(testKey())
	sigBytes, _ := base64.StdEncoding.DecodeString(good["signature"].(string))
	lastSig := good["signature"].(string)
	nonCanonical := lastSig[:len(lastSig)-3] + string(lastSig[len(lastSig)-3]+1) + "=="
	cases := map[string][]byte{
		"empty":             nil,
		"not json":          []byte("signature"),
		"truncated":         sig[:len(sig)/2],
		"array":             []byte("[]"),
		"null":              []byte("null"),
		"string":            []byte(`"ed25519"`),
		"two values":        append(bytes.Clone(sig), sig...),
		"trailing garbage":  append(bytes.Clone(sig), 'x'),
		"deep":              []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)),
		"huge":              append(bytes.Clone(sig), bytes.Repeat([]byte(" "), maxSignatureDoc)...),
		"wrong format":      with("format", "bes-integrity-signature/2"),
		"wrong algorithm":   with("algorithm", "rsa"),
		"algorithm case":    with("algorithm", "Ed25519"),
		"missing signature": with("signature", nil),
		"missing key":       with("public_key", nil),
		"missing key_id":    with("key_id", nil),
		"unknown member":    with("comment", "hi"),
		"number member":     with("format", 1),
		"bad base64 key":    with("public_key", "!!!!"+good["public_key"].(string)[4:]),
		"bad base64 sig":    with("signature", "%%%%"+lastSig[4:]),
		"unpadded sig":      with("signature", base64.RawStdEncoding.EncodeToString(sigBytes)),
		"url base64 sig":    with("signature", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 64))),
		"non-canonical sig": with("signature", nonCanonical),
		"short key":         with("public_key", base64.StdEncoding.EncodeToString(pub[:31])),
		"long key":          with("public_key", base64.StdEncoding.EncodeToString(append(bytes.Clone(pub), 0))),
		"short sig":         with("signature", base64.StdEncoding.EncodeToString(sigBytes[:63])),
		"long sig":          with("signature", base64.StdEncoding.EncodeToString(append(bytes.Clone(sigBytes), 0))),
		"key_id mismatch":   with("key_id", KeyID(pubOf(otherKey()))),
		"key_id upper":      with("key_id", strings.ToUpper(good["key_id"].(string))),
		"duplicate member":  []byte(strings.Replace(string(sig), "{", `{"signature": "AAAA",`, 1)),
		"member case":       []byte(strings.Replace(string(sig), `"format"`, `"Format"`, 1)),
	}
	for name, doc := range cases {
		_, err := Verify(rep, doc, nil)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		} else if len(err.Error()) > 300 {
			t.Errorf("%s: error is %d bytes long", name, len(err.Error()))
		}
	}
}

// Bytes that carry a valid signature but are not a valid report.
func TestMalformedSignedReport(t *testing.T) {
	rep, _ := smallReport(t)
	var m map[string]any
	if err := json.Unmarshal(rep, &m); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		c := map[string]any{}
		for a, b := range m {
			c[a] = b
		}
		c[k] = v
		b, _ := json.Marshal(c)
		return b
	}
	cases := map[string][]byte{
		"not json":         []byte("hello"),
		"empty":            nil,
		"array":            []byte("[]"),
		"two values":       append(bytes.Clone(rep), rep...),
		"duplicate key":    []byte(strings.Replace(string(rep), "{", `{"repository": "other",`, 1)),
		"unknown member":   with("extra", 1),
		"wrong format":     with("format", "bes-integrity-report/9"),
		"key_id mismatch":  with("key_id", KeyID(pubOf(otherKey()))),
		"summary mismatch": with("summary", map[string]int{"points": 7}),
		"bad time":         with("generated", "yesterday"),
		"bad point":        with("points", []map[string]any{{"id": "x", "result": "great"}}),
	}
	for name, data := range cases {
		_, err := Verify(data, signRaw(testKey(), data), nil)
		if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// Control: a re-encoded (not byte-identical) but valid report verifies.
	if _, err := Verify(with("format", ReportFormat), signRaw(testKey(), with("format", ReportFormat)), nil); err != nil {
		t.Errorf("re-encoded valid report: %v", err)
	}
}

// The DER prefix given in doc.go turns a raw key into a PKIX public key.
func TestPKIXPrefix(t *testing.T) {
	pub := pubOf(testKey())
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := hex.DecodeString("302a300506032b6570032100")
	if !bytes.Equal(der, append(prefix, pub...)) {
		t.Errorf("PKIX DER %x is not prefix || key", der)
	}
}

// A third party with OpenSSL and no code of ours can verify a report.
func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed (make test installs it: it is in TEST_DEBS)")
	}
	dir := t.TempDir()
	rep, sig := smallReport(t)
	var doc signatureDoc
	if err := json.Unmarshal(sig, &doc); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(doc.Signature)
	files := map[string][]byte{"report.json": rep, "report.sig.bin": raw, "tampered.json": bytes.Replace(rep, []byte("failed"), []byte("passed"), 1)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pubPath := filepath.Join(dir, "appliance-integrity.pub")
	if err := WritePublicKey(pubPath, pubOf(testKey())); err != nil {
		t.Fatal(err)
	}
	openssl := func(in string) error {
		cmd := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin",
			"-in", filepath.Join(dir, in), "-sigfile", filepath.Join(dir, "report.sig.bin"))
		out, err := cmd.CombinedOutput()
		t.Logf("openssl %s: %s", in, bytes.TrimSpace(out))
		return err
	}
	if err := openssl("report.json"); err != nil {
		t.Errorf("openssl rejects a good report: %v", err)
	}
	if err := openssl("tampered.json"); err == nil {
		t.Error("openssl accepts a tampered report")
	}
}

func TestSignatureFile(t *testing.T) {
	if got := SignatureFile("/var/lib/bes/reports/2025-03.json"); got != "/var/lib/bes/reports/2025-03.json.sig" {
		t.Errorf("SignatureFile = %s", got)
	}
}
