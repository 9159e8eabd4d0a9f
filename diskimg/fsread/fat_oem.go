package fsread

import "strings"

// cp437High maps bytes 0x80..0xFF of IBM code page 437, the default OEM
// code page of FAT short names (and of Linux's vfat "codepage=437").
const cp437High = "ÇüéâäàåçêëèïîìÄÅ" +
	"ÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
	"áíóúñÑªº¿⌐¬½¼¡«»" +
	"░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
	"└┴┬├─┼╞╟╚╔╩╦╠═╬╧" +
	"╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
	"αßΓπΣσµτΦΘΩδ∞φε∩" +
	"≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0"

// decodeOEM decodes a short name from code page 437 to UTF-8.
func decodeOEM(b []byte) string {
	var high []rune // decoded only when a name needs it
	var sb strings.Builder
	for _, c := range b {
		if c < 0x80 {
			sb.WriteByte(c)
			continue
		}
		if high == nil {
			high = []rune(cp437High)
		}
		sb.WriteRune(high[c-0x80])
	}
	return sb.String()
}
