package s3store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
)

// List calls fn with the name of every committed pack, in ascending order,
// each once. Uploads in progress are not listed. Keys under "packs/" that do
// not fit the layout are skipped with a warning. An error from fn stops the
// listing and is returned as is.
//
// S3 lists keys in byte order, so the shards (packs/00/ ... packs/ff/)
// arrive in order; names are sorted within a shard, so memory holds one
// shard's names at a time, not the whole repository's.
func (s *Store) List(ctx context.Context, fn func(name string) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops minio-go's lister on early return
	defer cancel()
	prefix := s.packsPrefix()
	var shard string
	var batch []string
	for obj := range s.core.ListObjectsIter(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3 list packs: %w", obj.Err)
		}
		sh, name, ok := s.parsePackKey(prefix, obj.Key)
		if !ok {
			continue
		}
		if sh != shard {
			if sh < shard {
				return fmt.Errorf("s3 list packs: server listed shard %s after %s: listing not in key order", sh, shard)
			}
			if err := emitSorted(batch, fn); err != nil {
				return err
			}
			shard, batch = sh, batch[:0]
		}
		batch = append(batch, name)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 list packs: %w", err)
	}
	return emitSorted(batch, fn)
}

// parsePackKey splits PREFIX/packs/xx/<name>, warning about strays.
func (s *Store) parsePackKey(prefix, key string) (shard, name string, ok bool) {
	rel := strings.TrimPrefix(key, prefix)
	shard, name, ok = strings.Cut(rel, "/")
	if ok && CheckPackName(name) == nil && shard == name[:2] {
		return shard, name, true
	}
	if !strings.HasSuffix(key, "/") { // directory markers are harmless
		s.log.Warn("skipping object that is not a pack", "key", clip(key))
	}
	return "", "", false
}

func emitSorted(names []string, fn func(string) error) error {
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}
