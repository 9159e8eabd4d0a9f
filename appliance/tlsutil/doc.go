// Package tlsutil keeps the appliance's self-signed TLS certificate for the
// admin console and REST API.
//
// LoadOrCreate is called once at daemon start. It loads dir/cert.pem and
// dir/key.pem, or makes a new ECDSA P-256 certificate when they are
// missing, expire within 30 days, or do not cover every host the appliance
// is reached by (DefaultHosts: the host name and the interface addresses).
// Replaced files are kept as cert.pem.old and key.pem.old.
//
// Invariants:
//   - key.pem is never readable by group or other: one that is gets refused,
//     never silently used or fixed.
//   - Files are written durably (temp file in dir, fsync, rename, fsync dir),
//     and the pair is swapped in an order that a crash at any point leaves
//     either the old pair, the new pair or a missing file (which the next
//     start repairs by generating), never a certificate with the wrong key.
//   - A certificate and key that do not match are refused, naming both files.
//
// tlsutil imports nothing from the project.
package tlsutil
