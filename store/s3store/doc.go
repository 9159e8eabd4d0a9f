// Package s3store keeps a BES repository in an S3-compatible bucket: packs
// (immutable blobs of about 32 MiB named by 32 lowercase hex characters) and
// small named files (config, key slots). It speaks S3 through
// github.com/minio/minio-go/v7 and knows nothing of pack contents; the
// repository layer above adapts it to its storage interface.
//
// # Addresses and credentials
//
// ParseURL reads restic-style addresses, "s3:http://HOST:PORT/BUCKET/PREFIX"
// or "s3:https://...". Credentials never appear in the address: they come
// from CredentialsFromEnv (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...),
// and Credentials prints itself with the secret redacted.
//
// # Layout in the bucket
//
//	PREFIX/packs/<first 2 hex chars of name>/<name>   packs
//	PREFIX/<key>                                      files, e.g. "config.json", "keys/abc.json"
//
// The "packs/" area is reserved: file keys may not start with it. Objects
// under it that do not fit the layout are ignored by List.
//
// # Guarantees
//
//   - A pack becomes visible under its name only when Writer.Commit returns
//     nil; it is then durable (S3 acknowledges a completed upload only once
//     stored) and its size has been checked. A Writer sends a pack of up to
//     one part with a single PUT, a larger one as a multipart upload whose
//     full parts are uploaded in the background while the next one fills;
//     memory is bounded by two parts (Options.PartSize, 16 MiB by default).
//   - Writer.Abort, and a failed Commit, abort the multipart upload, so no
//     incomplete upload is left to be billed. Only a failure in the final
//     "complete" step can leave an unreferenced object; the repository's
//     write ordering (packs before index) makes such garbage harmless.
//   - Every part and file is sent with Content-MD5 and a SHA-256 payload
//     hash, so the server rejects a body damaged on the way.
//   - PutFile is a single PUT: readers see the old or the new content.
//   - ReadAt has io.ReaderAt semantics; absent packs and files give errors
//     matching fs.ErrNotExist; Remove of an absent pack succeeds.
//   - List yields committed packs in ascending order, holding one shard's
//     names (1/256 of the repository) in memory at a time.
//   - SetRetention uses S3 Object Lock (GOVERNANCE mode) and never shortens
//     a retention. With Object Lock the bucket is versioned: Remove of a
//     pack then only adds a delete marker, and a retained pack cannot be
//     removed before its date. Reclaiming space from old versions is the
//     bucket's lifecycle policy's job.
//
// Names and keys are validated before any request (ErrBadName); every error
// names the operation and the pack or key, e.g. "s3 read pack <name> at
// <off>: ...". A Store is safe for concurrent use; a Writer is not.
//
// This package imports no other BES package. Tests run against a real S3
// server (versitygw) started by package s3test.
package s3store
