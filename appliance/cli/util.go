package cli

import (
	"encoding/json"
	"io"
)

func jsonLine(w io.Writer) *json.Encoder { return json.NewEncoder(w) }
