package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrWriterClosed is returned by a Writer used after Commit or Abort.
var ErrWriterClosed = errors.New("pack writer already committed or aborted")

// abortTimeout bounds the clean-up request after a failure or Abort; it
// runs even when the writer's context is already cancelled.
const abortTimeout = time.Minute

const (
	firstBufSize = 1 << 20 // the first part buffer starts here and doubles up to PartSize
	packMIME     = "application/octet-stream"
)

type writerState int

const (
	stateOpen writerState = iota
	stateCommitted
	stateAborted
)

// Writer streams one pack into the bucket. Data is cut into parts of
// Options.PartSize; a full part is uploaded in the background while the
// next one fills, so at most two parts are held in memory. A pack that fits
// in one part is sent with a single PUT at Commit. Nothing is visible under
// the pack's name before Commit returns nil.
//
// A Writer is not safe for concurrent use. Call Abort (for instance in a
// defer) on every path that does not Commit; Abort after a successful
// Commit does nothing.
type Writer struct {
	s    *Store
	ctx  context.Context
	name string
	key  string

	buf      []byte // the part being filled, at most partSize bytes
	spare    []byte // the buffer of the last finished upload, reused next
	n        int64
	uploadID string
	nextPart int
	parts    []minio.CompletePart
	pending  chan partResult // non-nil while a part upload runs
	err      error           // first failure; every later call returns it
	state    writerState
}

type partResult struct {
	part minio.CompletePart
	buf  []byte
	err  error
}

// NewWriter starts a pack named name. It makes no request yet. ctx governs
// every upload the writer makes.
func (s *Store) NewWriter(ctx context.Context, name string) (*Writer, error) {
	if err := CheckPackName(name); err != nil {
		return nil, fmt.Errorf("s3 write pack: %w", err)
	}
	return &Writer{s: s, ctx: ctx, name: name, key: s.packKey(name), nextPart: 1}, nil
}

// Len returns the number of bytes written so far.
func (w *Writer) Len() int64 { return w.n }

// Write appends p to the pack. It may block while the previous part
// finishes uploading, and it reports a failed background upload.
func (w *Writer) Write(p []byte) (int, error) {
	if w.state != stateOpen {
		return 0, fmt.Errorf("s3 write pack %s: %w", w.name, ErrWriterClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if int64(len(w.buf)) == w.s.partSize {
			if err := w.flush(); err != nil {
				w.err = fmt.Errorf("s3 write pack %s: %w", w.name, err)
				return written, w.err
			}
		}
		k := min(int(w.s.partSize)-len(w.buf), len(p))
		w.reserve(k)
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		written += k
		w.n += int64(k)
	}
	return written, nil
}

// reserve makes room for k more bytes without ever exceeding partSize.
func (w *Writer) reserve(k int) {
	need := len(w.buf) + k
	if need <= cap(w.buf) {
		return
	}
	c := max(2*cap(w.buf), need, firstBufSize)
	c = min(c, int(w.s.partSize))
	nb := make([]byte, len(w.buf), c)
	copy(nb, w.buf)
	w.buf = nb
}

// flush hands the full buffer to a background upload, after waiting for
// the previous one. It starts the multipart upload on first use.
func (w *Writer) flush() error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.uploadID == "" {
		id, err := w.s.core.NewMultipartUpload(w.ctx, w.s.loc.Bucket, w.key, minio.PutObjectOptions{ContentType: packMIME})
		if err != nil {
			return fmt.Errorf("start multipart upload: %w", err)
		}
		w.uploadID = id
	}
	if w.nextPart > maxParts {
		return fmt.Errorf("more than %d parts; raise the part size", maxParts)
	}
	data, num, id := w.buf, w.nextPart, w.uploadID
	w.nextPart++
	w.buf, w.spare = w.spare[:0], nil
	ch := make(chan partResult, 1)
	w.pending = ch
	go func() { ch <- w.s.uploadPart(w.ctx, w.key, id, num, data) }()
	return nil
}

// wait collects the running part upload, if any.
func (w *Writer) wait() error {
	if w.pending == nil {
		return nil
	}
	r := <-w.pending
	w.pending = nil
	w.spare = r.buf
	if r.err != nil {
		return r.err
	}
	w.parts = append(w.parts, r.part)
	return nil
}

func (s *Store) uploadPart(ctx context.Context, key, uploadID string, num int, data []byte) partResult {
	md5b64, shaHex := digests(data)
	p, err := s.core.PutObjectPart(ctx, s.loc.Bucket, key, uploadID, num, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectPartOptions{Md5Base64: md5b64, Sha256Hex: shaHex})
	if err != nil {
		return partResult{buf: data, err: fmt.Errorf("upload part %d: %w", num, err)}
	}
	return partResult{buf: data, part: minio.CompletePart{PartNumber: num, ETag: p.ETag}}
}

// Commit uploads what is left and completes the upload; the pack becomes
// visible under its name only now. After Commit returns nil the pack is
// durable, and its size has been checked against Len. On error nothing
// is committed by this writer (a multipart upload is aborted), though a
// failure while completing may leave an unreferenced object behind.
func (w *Writer) Commit() error {
	if w.state != stateOpen {
		return fmt.Errorf("s3 commit pack %s: %w", w.name, ErrWriterClosed)
	}
	err := w.err // already carries the pack name
	if err == nil {
		if err = w.commit(); err != nil {
			err = fmt.Errorf("s3 commit pack %s: %w", w.name, err)
		}
	}
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			w.s.log.Warn("abort after failed commit", "pack", w.name, "err", aerr)
		}
		return err
	}
	w.state = stateCommitted
	w.release()
	return nil
}

func (w *Writer) commit() error {
	if w.uploadID == "" {
		md5b64, shaHex := digests(w.buf)
		_, err := w.s.core.PutObject(w.ctx, w.s.loc.Bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)),
			md5b64, shaHex, minio.PutObjectOptions{ContentType: packMIME})
		if err != nil {
			return err
		}
		return w.verifySize()
	}
	if err := w.wait(); err != nil {
		return err
	}
	if len(w.buf) > 0 {
		r := w.s.uploadPart(w.ctx, w.key, w.uploadID, w.nextPart, w.buf)
		if r.err != nil {
			return r.err
		}
		w.parts = append(w.parts, r.part)
	}
	_, err := w.s.core.CompleteMultipartUpload(w.ctx, w.s.loc.Bucket, w.key, w.uploadID, w.parts, minio.PutObjectOptions{})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	w.uploadID = "" // completed: nothing left to abort
	return w.verifySize()
}

// verifySize checks the committed object; a wrong size (a server bug) is
// removed so that it cannot be mistaken for a good pack.
func (w *Writer) verifySize() error {
	info, err := w.s.core.StatObject(w.ctx, w.s.loc.Bucket, w.key, minio.StatObjectOptions{})
	if err != nil {
		return fmt.Errorf("check committed size: %w", translate(err))
	}
	if info.Size == w.n {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	rerr := w.s.core.RemoveObject(ctx, w.s.loc.Bucket, w.key, minio.RemoveObjectOptions{})
	return errors.Join(fmt.Errorf("committed object has %d bytes, wrote %d", info.Size, w.n), rerr)
}

// Abort discards the pack: the running upload is awaited and the multipart
// upload aborted, so neither an object nor an incomplete upload remains.
// It runs even if the writer's context is cancelled. Abort after Commit or
// a second Abort does nothing and returns nil.
func (w *Writer) Abort() error {
	if w.state != stateOpen {
		return nil
	}
	w.state = stateAborted
	_ = w.wait() // its error is moot: the upload goes away
	defer w.release()
	if w.uploadID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	err := w.s.core.AbortMultipartUpload(ctx, w.s.loc.Bucket, w.key, w.uploadID)
	if err != nil && errorCode(err) != "NoSuchUpload" {
		return fmt.Errorf("s3 abort pack %s: upload %s: %w", w.name, w.uploadID, err)
	}
	w.uploadID = ""
	return nil
}

func (w *Writer) release() {
	w.buf, w.spare, w.parts = nil, nil, nil
}
