package ec

import (
	"bytes"
	"testing"
)

func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []header{
		{K: 4, M: 2, Index: 5, PieceSize: 512 << 10, Name: "0123456789abcdef"},
		{K: 1, M: 0, Index: 0, PieceSize: 64, Name: string(bytes.Repeat([]byte("f"), 64))},
		{K: 64, M: 64, Index: 127, PieceSize: maxPieceSize, Name: "0123456789abcdef0"},
	} {
		b := h.encode()
		f.Add(b)
		f.Add(b[:100])
		c := bytes.Clone(b)
		c[12] = 0
		f.Add(c)
	}
	f.Add([]byte{})
	f.Add([]byte("BESSHRD1"))
	f.Add(bytes.Repeat([]byte{0xff}, headerLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		if h.K < 1 || h.K > maxK || h.M > maxM || h.Index >= h.K+h.M || checkPieceSize(h.PieceSize) != nil || !validName(h.Name) {
			t.Fatalf("accepted invalid header %+v", h)
		}
		if h2, err := decodeHeader(h.encode()); err != nil || h2 != h {
			t.Fatalf("re-encode: %+v %v", h2, err)
		}
	})
}

func FuzzDecodeFooter(f *testing.F) {
	for _, ft := range []footer{
		{},
		{Size: 10, Stripes: 1, LastPiece: 64, CRCs: []uint32{0xdeadbeef}},
		{Size: 3*4*4096 + 12345, Stripes: 4, LastPiece: 3136, CRCs: []uint32{1, 2, 3, 4}},
	} {
		b := ft.encode()
		f.Add(b)
		f.Add(b[1:])
		c := bytes.Clone(b)
		c[8]++
		f.Add(c)
	}
	f.Add([]byte{})
	f.Add([]byte("BESSHEND"))
	f.Add(append(bytes.Repeat([]byte{0xff}, 40), []byte("BESSHEND")...))
	f.Add(append([]byte{0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0}, []byte("BESSHEND")...))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The trailer parser must bound the footer by the available bytes.
		if fl, err := footerLenFromTrailer(b, int64(len(b))); err == nil {
			if fl > len(b) || fl < minFooterLen {
				t.Fatalf("footer length %d for %d bytes", fl, len(b))
			}
			b = b[len(b)-fl:]
		}
		ft, err := decodeFooter(b)
		if err != nil {
			return
		}
		if len(ft.CRCs) != ft.Stripes || ft.Size < 0 || ft.Size > maxPackSize {
			t.Fatalf("accepted invalid footer %+v", ft)
		}
		if !bytes.Equal(ft.encode(), b) {
			t.Fatal("re-encode differs")
		}
	})
}
