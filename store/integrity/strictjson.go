package integrity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxDepth bounds the nesting of the documents this package reads; the
// report nests four levels deep.
const maxDepth = 16

// checkJSON reports an error unless data is exactly one JSON value whose
// objects have no repeated keys and which nests at most maxDepth deep.
// encoding/json alone accepts duplicate keys (the last wins), which would let
// two parsers read one signed document differently.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		keys      map[string]struct{} // nil for an array
		expectKey bool
	}
	var stack []*frame
	values := 0
	valueDone := func() {
		if len(stack) == 0 {
			values++
		} else if top := stack[len(stack)-1]; top.keys != nil {
			top.expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if values > 0 {
			return errors.New("data after the JSON value")
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == maxDepth {
					return fmt.Errorf("nested deeper than %d levels", maxDepth)
				}
				f := &frame{}
				if d == '{' {
					f.keys, f.expectKey = map[string]struct{}{}, true
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if len(stack) > 0 {
			if top := stack[len(stack)-1]; top.expectKey {
				key, ok := tok.(string)
				if !ok {
					return errors.New("object key is not a string")
				}
				if _, dup := top.keys[key]; dup {
					return fmt.Errorf("duplicate key %s", quote(key))
				}
				top.keys[key] = struct{}{}
				top.expectKey = false
				continue
			}
		}
		valueDone()
	}
	if values == 0 {
		return errors.New("no JSON value")
	}
	return nil
}
