package diskimg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"bes/store/catalog"
)

// Runner runs an external command and returns its combined output. It is
// the seam through which LVM is driven (and faked in tests).
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// snapshotSize is the copy-on-write space asked for an LVM snapshot: a
// percentage of the origin, so a busy volume does not overflow it while
// the image is read.
const snapshotSize = "20%ORIGIN"

// withLVMSnapshot takes an LVM snapshot of the logical volume at lvPath,
// runs fn on the snapshot's device, and removes the snapshot afterwards,
// also when fn fails or ctx is cancelled.
func withLVMSnapshot(ctx context.Context, run Runner, lvPath string, fn func(snapDev string) error) error {
	out, err := run(ctx, "lvs", "--noheadings", "--separator", "/", "-o", "vg_name,lv_name", lvPath)
	if err != nil {
		return fmt.Errorf("lvm snapshot: %s is not an LVM logical volume: %w", lvPath, err)
	}
	vglv := strings.TrimSpace(string(out))
	vg, lv, ok := strings.Cut(vglv, "/")
	if !ok || vg == "" || lv == "" || strings.ContainsAny(vglv, " \n") {
		return fmt.Errorf("lvm snapshot: cannot tell the volume group of %s (lvs said %q)", lvPath, vglv)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	snap := "bes-snap-" + hex.EncodeToString(rnd[:])
	if _, err := run(ctx, "lvcreate", "--snapshot", "--permission", "r", "--extents", snapshotSize, "--name", snap, vg+"/"+lv); err != nil {
		return fmt.Errorf("lvm snapshot of %s: %w", lvPath, err)
	}
	ferr := fn("/dev/" + vg + "/" + snap)
	// Remove the snapshot even when ctx is done: a left-over snapshot fills
	// up and breaks the origin's writes later.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if _, err := run(rctx, "lvremove", "--force", vg+"/"+snap); err != nil {
		if ferr != nil {
			return fmt.Errorf("%w (and removing snapshot %s/%s failed: %v)", ferr, vg, snap, err)
		}
		return fmt.Errorf("removing lvm snapshot %s/%s: %w", vg, snap, err)
	}
	return ferr
}

func catalogFilter(host string) catalog.PointFilter {
	return catalog.PointFilter{Host: host, Kind: "image"}
}
