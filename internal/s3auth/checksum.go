package s3auth

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"

	sha256 "github.com/minio/sha256-simd"
)

// CRC64NVMEPoly is the CRC-64/NVME polynomial in the bit-reversed form
// hash/crc64 takes (normal form 0xad93d23594c93659). With hash/crc64's
// initial value and final XOR of all ones this is the CRC-64/NVME that S3
// calls CRC64NVME; its check value for "123456789" is 0xae8b14860a799888.
const CRC64NVMEPoly = 0x9a6c9329ac4bc9b5

// Read-only lookup tables, built once; never written after init.
var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64nvmeTable = crc64.MakeTable(CRC64NVMEPoly)
)

// checksumAlg is one x-amz-checksum-* algorithm.
type checksumAlg struct {
	name string // S3's name: "CRC32"
	size int    // digest bytes
	new  func() hash.Hash
}

// checksumAlgs lists the algorithms S3 accepts, in a fixed order.
var checksumAlgs = [...]checksumAlg{
	{"CRC32", 4, func() hash.Hash { return crc32.NewIEEE() }},
	{"CRC32C", 4, func() hash.Hash { return crc32.New(crc32cTable) }},
	{"CRC64NVME", 8, func() hash.Hash { return crc64.New(crc64nvmeTable) }},
	{"SHA1", 20, sha1.New},
	{"SHA256", 32, sha256.New},
}

// NewChecksum returns a fresh hash for an S3 checksum algorithm name
// ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"; case-insensitive).
// Its Sum is the big-endian digest whose base64 is the x-amz-checksum-*
// value. ok is false for an unknown name. The object layer can use it to
// compute checksums it stores.
func NewChecksum(name string) (h hash.Hash, ok bool) {
	alg := findAlg(name)
	if alg == nil {
		return nil, false
	}
	return alg.new(), true
}

// findAlg finds an algorithm by S3 name, case-insensitively.
func findAlg(name string) *checksumAlg {
	for i := range checksumAlgs {
		if strings.EqualFold(checksumAlgs[i].name, name) {
			return &checksumAlgs[i]
		}
	}
	return nil
}

// checksumHeaderPrefix is the lower-case prefix of checksum header and
// trailer names; the suffix is the lower-case algorithm name.
const checksumHeaderPrefix = "x-amz-checksum-"

// algFromHeader maps "x-amz-checksum-crc32" (any case) to its algorithm;
// nil if name is not a checksum header of a known algorithm.
func algFromHeader(name string) *checksumAlg {
	if len(name) <= len(checksumHeaderPrefix) || !strings.EqualFold(name[:len(checksumHeaderPrefix)], checksumHeaderPrefix) {
		return nil
	}
	return findAlg(name[len(checksumHeaderPrefix):])
}

func lowerAlg(name string) string { return strings.ToLower(name) }

// decodeChecksum decodes a base64 checksum value of alg; a value of the
// wrong size or not base64 is ErrInvalidChecksum.
func decodeChecksum(alg *checksumAlg, v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != alg.size {
		return nil, fmt.Errorf("x-amz-checksum-%s value %.80q: want base64 of %d bytes: %w",
			lowerAlg(alg.name), v, alg.size, ErrInvalidChecksum)
	}
	return b, nil
}
