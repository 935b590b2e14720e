package httpapi

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxKeyLength is S3's limit on the length of an object key, in bytes.
const MaxKeyLength = 1024

// checkBucketName enforces S3's general-purpose bucket naming rules: 3–63
// characters of a–z, 0–9, '.' and '-', starting and ending with a letter or
// digit, no adjacent periods or period–hyphen pairs, not an IPv4 address, and
// none of the prefixes and suffixes S3 reserves.
func checkBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return detail(ErrInvalidBucketName, "bucket name %q must be 3 to 63 characters long", clip(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return detail(ErrInvalidBucketName, "bucket name %q may hold only a-z, 0-9, '.' and '-'", clip(name))
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return detail(ErrInvalidBucketName, "bucket name %q must start and end with a letter or digit", name)
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return detail(ErrInvalidBucketName, "bucket name %q has adjacent periods or a period next to a hyphen", name)
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return detail(ErrInvalidBucketName, "bucket name %q must not be an IP address", name)
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return detail(ErrInvalidBucketName, "bucket name %q uses the reserved prefix %q", name, p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return detail(ErrInvalidBucketName, "bucket name %q uses the reserved suffix %q", name, s)
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkKey enforces S3's key rules: at most MaxKeyLength bytes of UTF-8.
func checkKey(key string) error {
	if len(key) > MaxKeyLength {
		return detail(ErrKeyTooLong, "key of %d bytes is longer than the maximum of %d", len(key), MaxKeyLength)
	}
	if !utf8.ValidString(key) {
		return detail(ErrInvalidArgument, "object key is not valid UTF-8")
	}
	return nil
}

// checkNewKey enforces, on top of checkKey, what shale requires of a key it
// is asked to create: no control characters (bytes below 0x20, and 0x7F).
// S3 stores such keys, but XML 1.0 cannot carry most of them, so a listing
// without encoding-type=url would be unreadable (or silently altered) for
// every client; refusing them at creation keeps every listing well-formed.
// Keys that already exist stay readable and deletable.
func checkNewKey(key string) error {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return detail(ErrInvalidArgument, "object key contains the control character 0x%02X at byte %d; shale refuses keys with characters below 0x20 or 0x7F because XML listings cannot carry them", c, i)
		}
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
