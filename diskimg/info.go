package diskimg

import (
	"encoding/json"
	"fmt"

	"bes/diskimg/layout"
)

// decodeInfo parses and checks an image.json document.
func decodeInfo(doc []byte) (*Info, error) {
	var in Info
	if err := json.Unmarshal(doc, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", InfoEntry, err)
	}
	switch {
	case in.Version != InfoVersion:
		return nil, fmt.Errorf("%s: version %d (this BES reads %d)", InfoEntry, in.Version, InfoVersion)
	case in.Table == nil:
		return nil, fmt.Errorf("%s: no partition table", InfoEntry)
	case in.Table.DiskSize <= 0:
		return nil, fmt.Errorf("%s: disk size %d", InfoEntry, in.Table.DiskSize)
	case in.ChunkSize <= 0:
		return nil, fmt.Errorf("%s: chunk size %d", InfoEntry, in.ChunkSize)
	}
	switch in.Table.Kind {
	case layout.KindGPT, layout.KindMBR, layout.KindNone:
	default:
		return nil, fmt.Errorf("%s: table kind %q", InfoEntry, in.Table.Kind)
	}
	return &in, nil
}
