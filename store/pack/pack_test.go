package pack

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"
)

// gcmSealer is a real AES-256-GCM sealer for tests (the repository uses
// crypt.Keys, which has the same contract).
type gcmSealer struct{ aead cipher.AEAD }

func newSealer(t testing.TB) *gcmSealer {
	key := make([]byte, 32)
	rand.Read(key)
	b, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(b)
	return &gcmSealer{a}
}

func (s *gcmSealer) Seal(dst, pt, ad []byte) []byte {
	n := make([]byte, 12)
	rand.Read(n)
	return s.aead.Seal(append(dst, n...), n, pt, ad)
}

func (s *gcmSealer) Open(dst, ct, ad []byte) ([]byte, error) {
	if len(ct) < 28 {
		return nil, errors.New("short")
	}
	return s.aead.Open(dst, ct[:12], ct[12:], ad)
}

func sampleEntries() []Entry {
	var es []Entry
	var off int64
	for i := 0; i < 5; i++ {
		e := Entry{Type: TypeData, Flags: FlagEncrypted | 1, Offset: off, Length: int64(100 + i), RawLen: int64(1000 * i)}
		e.ID[0], e.ID[31] = byte(i), 0xAA
		es = append(es, e)
		off += e.Length
	}
	es[4].Type = TypePoint
	return es
}

func TestTrailerRoundTrip(t *testing.T) {
	s := newSealer(t)
	for _, es := range [][]Entry{nil, sampleEntries()} {
		var end int64
		for _, e := range es {
			end = e.Offset + e.Length
		}
		sealed := AppendTrailer(nil, "abcd", es, s)
		pack := append(make([]byte, end), sealed...)
		pack = append(pack, Tail(len(sealed))...)
		n, err := ParseTail(pack[len(pack)-TailSize:], int64(len(pack)))
		if err != nil || n != len(sealed) {
			t.Fatalf("ParseTail = %d, %v", n, err)
		}
		got, err := DecodeTrailer(pack[end:end+int64(n)], "abcd", end, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(es) {
			t.Fatalf("got %d entries, want %d", len(got), len(es))
		}
		for i := range es {
			if got[i] != es[i] {
				t.Errorf("entry %d: %+v != %+v", i, got[i], es[i])
			}
		}
		if _, err := DecodeTrailer(pack[end:end+int64(n)], "other", end, s); err == nil {
			t.Error("trailer opened under another pack's name")
		}
	}
}

func TestParsePlainRejects(t *testing.T) {
	good := func() []byte {
		s := &plainSealer{}
		return AppendTrailer(nil, "x", sampleEntries(), s)
	}
	cases := map[string]struct {
		b   []byte
		end int64
	}{
		"empty":           {nil, 1 << 20},
		"bad magic":       {append([]byte("XXXXXXXX"), good()[8:]...), 1 << 20},
		"blob area short": {good(), 100},
		"truncated":       {good()[:40], 1 << 20},
	}
	for name, c := range cases {
		if _, err := parsePlain(c.b, c.end); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	b := good()
	b[20] ^= 1
	if _, err := parsePlain(b, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: err = %v", err)
	}
	if _, err := ParseTail([]byte("\xff\xff\xff\x7fBESPACK1"), 100); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge trailer length accepted: %v", err)
	}
}

// plainSealer leaves data in the clear so the fuzzer reaches the parser.
type plainSealer struct{}

func (plainSealer) Seal(dst, pt, _ []byte) []byte          { return append(dst, pt...) }
func (plainSealer) Open(dst, ct, _ []byte) ([]byte, error) { return append(dst, ct...), nil }

func FuzzDecodeTrailer(f *testing.F) {
	f.Add(AppendTrailer(nil, "x", sampleEntries(), plainSealer{}), int64(1<<20))
	f.Add(AppendTrailer(nil, "x", nil, plainSealer{}), int64(0))
	f.Add([]byte("BESPT001\xff\xff\xff\xff\x0f"), int64(10))
	f.Fuzz(func(t *testing.T, b []byte, end int64) {
		es, err := DecodeTrailer(b, "x", end, plainSealer{})
		if err != nil {
			return
		}
		var prev int64
		for _, e := range es {
			if e.Offset < prev || e.Offset+e.Length > end {
				t.Fatalf("accepted bad range %+v (end %d)", e, end)
			}
			prev = e.Offset + e.Length
		}
		again := AppendTrailer(nil, "x", es, plainSealer{})
		if !bytes.Equal(again, b) {
			es2, err := DecodeTrailer(again, "x", end, plainSealer{})
			if err != nil || len(es2) != len(es) {
				t.Fatalf("re-encoding does not decode: %v", err)
			}
		}
	})
}
