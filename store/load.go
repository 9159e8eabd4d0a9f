package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"bes/store/catalog"
	"bes/store/compress"
	"bes/store/crypt"
	"bes/store/pack"
)

// DamageError names a blob that could not be read back intact.
type DamageError struct {
	Pack  string
	Chunk crypt.ID
	Err   error
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("damaged chunk %s in pack %s: %v", e.Chunk.String()[:16], e.Pack, e.Err)
}

func (e *DamageError) Unwrap() error { return e.Err }

// ErrMissingChunk is returned for a chunk that is not in the index.
var ErrMissingChunk = errors.New("chunk not in the index")

// Lookup returns where a chunk is stored.
func (r *Repo) Lookup(ctx context.Context, id crypt.ID) (catalog.Location, error) {
	l, err := r.cat.Lookup(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return l, fmt.Errorf("chunk %s: %w", id.String()[:16], ErrMissingChunk)
	}
	return l, err
}

// LocateChunks finds where the chunks in want are stored: by one scan of
// the index when want is a large part of it, else by one lookup each. fn
// is called once per found chunk; the IDs not in the index are returned.
func LocateChunks[V any](ctx context.Context, r *Repo, want map[crypt.ID]V, fn func(catalog.Location)) ([]crypt.ID, error) {
	n, err := r.cat.Count(ctx)
	if err != nil {
		return nil, err
	}
	var missing []crypt.ID
	if int64(len(want))*8 < n {
		for id := range want {
			l, err := r.Lookup(ctx, id)
			if errors.Is(err, ErrMissingChunk) {
				missing = append(missing, id)
				continue
			}
			if err != nil {
				return nil, err
			}
			fn(l)
		}
		return missing, nil
	}
	found := make(map[crypt.ID]struct{}, len(want))
	err = r.cat.ForEachChunk(ctx, func(l catalog.Location) error {
		if _, ok := want[crypt.ID(l.ID)]; ok {
			found[crypt.ID(l.ID)] = struct{}{}
			fn(l)
		}
		return nil
	})
	for id := range want {
		if _, ok := found[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing, err
}

// LoadBlob reads, decrypts, decompresses and verifies one blob, appending
// its plaintext to dst[:0].
func (r *Repo) LoadBlob(ctx context.Context, id crypt.ID, dst []byte) ([]byte, error) {
	l, err := r.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	buf := r.bufs.get(int(l.Length))
	defer r.bufs.put(buf)
	if _, err := r.packs.ReadAt(ctx, l.Pack, buf, l.Offset); err != nil {
		return nil, &DamageError{Pack: l.Pack, Chunk: id, Err: err}
	}
	return r.decode(l, buf, dst)
}

// decode turns a stored blob into verified plaintext appended to dst[:0].
func (r *Repo) decode(l catalog.Location, stored, dst []byte) ([]byte, error) {
	id := crypt.ID(l.ID)
	comp := stored
	algo := compress.Algo(l.Flags &^ pack.FlagEncrypted)
	if l.Flags&pack.FlagEncrypted != 0 {
		into := dst[:0] // a raw blob decrypts straight into the output
		if algo != compress.None {
			scratch := r.bufs.get(len(stored)) // plaintext is shorter: never regrown
			defer r.bufs.put(scratch)
			into = scratch[:0]
		}
		p, err := r.keys.Open(into, stored, id[:])
		if err != nil {
			return nil, &DamageError{Pack: l.Pack, Chunk: id, Err: err}
		}
		if algo == compress.None {
			if int64(len(p)) != l.RawLen {
				return nil, &DamageError{Pack: l.Pack, Chunk: id, Err: fmt.Errorf("raw blob of %d bytes, index says %d", len(p), l.RawLen)}
			}
			return r.verify(l, p)
		}
		comp = p
	}
	out, err := r.codec.Decompress(dst, comp, algo, int(l.RawLen))
	if err != nil {
		return nil, &DamageError{Pack: l.Pack, Chunk: id, Err: err}
	}
	return r.verify(l, out)
}

// verify checks plaintext against its chunk ID: restore never trusts the
// index or the encryption alone.
func (r *Repo) verify(l catalog.Location, out []byte) ([]byte, error) {
	if r.keys.ChunkID(out) != crypt.ID(l.ID) {
		return nil, &DamageError{Pack: l.Pack, Chunk: l.ID, Err: errors.New("content does not match its ID")}
	}
	return out, nil
}

// Prefetch hints that the stored bytes [off, off+n) of a pack will be read
// soon; the disks start reading them in the background.
func (r *Repo) Prefetch(pack string, off, n int64) { r.packs.Prefetch(pack, off, n) }

// DropCache hints that the stored bytes [off, off+n) of a pack have been
// read and will not be needed again soon (their page-cache pages are freed).
func (r *Repo) DropCache(pack string, off, n int64) { r.packs.Drop(pack, off, n) }

// BlobFunc receives one verified blob. data is valid only during the call.
type BlobFunc func(l catalog.Location, data []byte) error

// ReadPackBlobs reads the given blobs of one pack in offset order, with
// nearby blobs coalesced into one read, and calls fn for each verified
// blob. A damaged blob is reported to onErr (which may return nil to go on)
// instead of fn.
func (r *Repo) ReadPackBlobs(ctx context.Context, pk string, locs []catalog.Location, fn BlobFunc, onErr func(catalog.Location, error) error) error {
	sort.Slice(locs, func(i, j int) bool { return locs[i].Offset < locs[j].Offset })
	const maxGap, maxSpan = 256 << 10, 1 << 20 // small reads keep each worker's buffers small
	buf, plain := r.bufs.get(0), r.bufs.get(0)
	defer func() { r.bufs.put(buf); r.bufs.put(plain) }()
	for i := 0; i < len(locs); {
		j, end := i+1, locs[i].Offset+locs[i].Length
		for j < len(locs) && locs[j].Offset-end <= maxGap && locs[j].Offset+locs[j].Length-locs[i].Offset <= maxSpan {
			if e := locs[j].Offset + locs[j].Length; e > end {
				end = e
			}
			j++
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := locs[i].Offset
		if n := int(end - start); cap(buf) >= n {
			buf = buf[:n]
		} else {
			r.bufs.put(buf)
			buf = r.bufs.get(n)
		}
		if _, err := r.packs.ReadAt(ctx, pk, buf, start); err != nil {
			for _, l := range locs[i:j] {
				if err := onErr(l, &DamageError{Pack: pk, Chunk: l.ID, Err: err}); err != nil {
					return err
				}
			}
			i = j
			continue
		}
		for _, l := range locs[i:j] {
			out, err := r.decode(l, buf[l.Offset-start:l.Offset-start+l.Length], plain)
			if err != nil {
				if err := onErr(l, err); err != nil {
					return err
				}
				continue
			}
			plain = out
			if err := fn(l, out); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}
