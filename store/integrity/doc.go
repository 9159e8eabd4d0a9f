// Package integrity makes signed integrity reports: a JSON document that
// lists restore points with the outcome of their last verification, signed
// by the appliance with an Ed25519 key so that a third party (an auditor, a
// customer, a control plane) can check that the report came from this
// appliance and was not altered, with any Ed25519 implementation.
//
// Key types: Report (with PointResult and Summary), Verified; functions
// Sign, Verify, LoadOrCreateKey, WritePublicKey, LoadPublicKey, KeyID.
//
// # Files
//
// A report is two files:
//
//	report.json       the report document (any name)
//	report.json.sig   its detached signature document (SignatureFile)
//
// # What is signed
//
// The signature is pure Ed25519 (RFC 8032; not Ed25519ph, no context
// string) over the exact bytes of the report file, from its first byte to
// its last, including the final newline. Nothing is canonicalised before
// verifying: a verifier hashes nothing and parses nothing first; it passes
// the file's bytes unchanged to its Ed25519 verify function. Re-indenting or
// re-encoding a report invalidates its signature.
//
// # The signature document
//
// A small JSON object, exactly these five members, each a string:
//
//	{
//	  "format": "bes-integrity-signature/1",
//	  "algorithm": "ed25519",
//	  "key_id": "<32 lowercase hex digits>",
//	  "public_key": "<standard base64 with padding of the raw 32-byte key>",
//	  "signature": "<standard base64 with padding of the 64-byte signature>"
//	}
//
// key_id is the first 16 bytes of SHA-256 over the raw 32-byte public key,
// in lowercase hex (KeyID). The embedded public_key only says which key
// signed; it proves nothing by itself. To trust a report, compare the key
// with the appliance's published public key (a PKIX "PUBLIC KEY" PEM file,
// LoadPublicKey) or its key_id with a fingerprint obtained out of band.
// Verify with trusted == nil reports Trusted=false for exactly this reason.
//
// # The report document
//
// UTF-8 JSON encoded by encoding/json with two-space indentation and a
// final newline. Members, in this order:
//
//	format      "bes-integrity-report/1"
//	repository  repository ID
//	appliance   host name of the appliance that signed it
//	generated   when the report was made
//	since       only points at or after this time are listed (omitted: all)
//	key_id      KeyID of the signing key; must equal the signature's key_id
//	summary     {points, passed, failed, partial, pending, chunks_checked}
//	points      array of point results, sorted by time then id
//
// Each point result has: id, host, kind (file | image), type (full |
// incremental), time (the point's time), verified_at (omitted when the
// point was never verified), mode (read-data | sample | index; omitted when
// never verified), result (passed | failed | partial | pending),
// chunks_checked, and damage (an array of strings naming damaged files or
// chunks with the reason; omitted when empty). Timestamps are RFC 3339 in
// UTC with up to nine fractional digits. Invalid UTF-8 in a string is
// replaced by U+FFFD when the report is encoded, so the signed bytes are
// always valid UTF-8.
//
// Verify additionally checks what a careful third party should: the report
// is one JSON value with no duplicate object keys and no unknown members,
// its format is known, its key_id matches the signing key, every result and
// mode is one of the values above, and the summary agrees with the points.
//
// # Verifying without this package
//
// With OpenSSL 3 and the appliance's public key PEM:
//
//	jq -r .signature report.json.sig | base64 -d > report.sig.bin
//	openssl pkeyutl -verify -pubin -inkey appliance-integrity.pub \
//	    -rawin -in report.json -sigfile report.sig.bin
//
// A raw 32-byte key becomes the DER of a PKIX public key by prefixing the
// 12 bytes 30 2a 30 05 06 03 2b 65 70 03 21 00.
//
// # The signing key
//
// The appliance's key is an Ed25519 private key in a PKCS#8 "PRIVATE KEY"
// PEM file of mode 0600; its public key sits beside it (PublicKeyFile) as a
// PKIX "PUBLIC KEY" PEM file of mode 0644. Both are written durably (temp
// file in the same directory, fsync, link or rename, fsync the directory);
// a crash between the two leaves a private key whose public file
// LoadOrCreateKey recreates on the next start. A key file that group or
// others may access is refused (ErrKeyPermissions). Temp files are named
// ".<name>.*.tmp-bes".
//
// Package integrity imports the standard library only.
package integrity
