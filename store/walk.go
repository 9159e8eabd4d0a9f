package store

import (
	"context"
	"errors"
	"io"

	"bes/store/manifest"
)

// WalkManifest calls fn for every entry of a point's manifest in order. The
// entry is only valid during the call.
func (r *Repo) WalkManifest(ctx context.Context, p *Point, fn func(*manifest.Entry) error) error {
	rc := r.OpenManifest(ctx, p)
	defer rc.Close()
	mr := manifest.NewReader(rc)
	for {
		e, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
