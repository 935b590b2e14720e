package httpapi

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shale-store/shale/object"
)

// Response documents carry S3's namespace, http://s3.amazonaws.com/doc/2006-03-01/,
// spelled out in each XMLName tag (tags cannot name a constant).

// Limits of the XML request bodies this package reads into memory.
const (
	maxCreateBucketXML = 64 << 10 // CreateBucketConfiguration
	maxDeleteXML       = 4 << 20  // 1000 keys of up to 1024 bytes, escaped
	maxCompleteXML     = 8 << 20  // 10000 parts with checksums
	maxDeleteKeys      = 1000     // S3's limit per DeleteObjects request
	maxParts           = 10000    // S3's highest part number
)

// iso8601 is the timestamp format of S3's XML documents.
func iso8601(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// quote renders a bare ETag the way S3 shows it.
func quote(etag string) string { return `"` + etag + `"` }

// readXMLBody reads a small request body (through the verifying reader of
// the authenticated request) of at most limit bytes.
func readXMLBody(body io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, detail(ErrMessageTooLarge, "the request body is larger than %d bytes", limit)
	}
	return b, nil
}

// --- requests ---

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

// parseLocationConstraint returns the LocationConstraint of a CreateBucket
// body; an empty body has none.
func parseLocationConstraint(body []byte) (string, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return "", nil
	}
	var c createBucketConfiguration
	if err := xml.Unmarshal(body, &c); err != nil {
		return "", detail(ErrMalformedXML, "CreateBucketConfiguration: %v", err)
	}
	return strings.TrimSpace(c.LocationConstraint), nil
}

type completeMultipartUpload struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber string `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

// parseCompleteMultipart parses a CompleteMultipartUpload body. It checks
// the document's shape (1 to 10000 parts, each with a part number and an
// ETag); which parts exist, their order and sizes are the object layer's
// to judge. ETags are returned bare (quotes stripped).
func parseCompleteMultipart(body []byte) ([]object.CompletePart, error) {
	var doc completeMultipartUpload
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, detail(ErrMalformedXML, "CompleteMultipartUpload: %v", err)
	}
	if len(doc.Parts) == 0 || len(doc.Parts) > maxParts {
		return nil, detail(ErrMalformedXML, "CompleteMultipartUpload must list 1 to %d parts, not %d", maxParts, len(doc.Parts))
	}
	parts := make([]object.CompletePart, len(doc.Parts))
	for i, p := range doc.Parts {
		n, ok := parseDigits(strings.TrimSpace(p.PartNumber))
		if !ok {
			return nil, detail(ErrMalformedXML, "part %d has PartNumber %q", i+1, clip(p.PartNumber))
		}
		if n < 1 || n > maxParts {
			return nil, detail(ErrInvalidArgument, "part number must be an integer between 1 and %d, not %d", maxParts, n)
		}
		etag := strings.Trim(strings.TrimSpace(p.ETag), `"`)
		if etag == "" {
			return nil, detail(ErrMalformedXML, "part %d has no ETag", n)
		}
		parts[i] = object.CompletePart{Number: int(n), ETag: etag}
	}
	return parts, nil
}

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   string   `xml:"Quiet"`
	Objects []struct {
		Key       *string `xml:"Key"`
		VersionID string  `xml:"VersionId"`
	} `xml:"Object"`
}

// parseDeleteObjects parses a DeleteObjects body into its quiet flag, keys
// and their version ids ("" when none; 1 to 1000; neither is validated
// here, each gets its own answer).
// Version ids are ignored: buckets are not versioned.
func parseDeleteObjects(body []byte) (quiet bool, keys, versions []string, err error) {
	var doc deleteRequest
	if err := xml.Unmarshal(body, &doc); err != nil {
		return false, nil, nil, detail(ErrMalformedXML, "Delete: %v", err)
	}
	switch strings.ToLower(strings.TrimSpace(doc.Quiet)) {
	case "", "false":
	case "true":
		quiet = true
	default:
		return false, nil, nil, detail(ErrMalformedXML, "Quiet must be true or false, not %q", clip(doc.Quiet))
	}
	if len(doc.Objects) == 0 || len(doc.Objects) > maxDeleteKeys {
		return false, nil, nil, detail(ErrMalformedXML, "Delete must list 1 to %d objects, not %d", maxDeleteKeys, len(doc.Objects))
	}
	keys, versions = make([]string, len(doc.Objects)), make([]string, len(doc.Objects))
	for i, o := range doc.Objects {
		if o.Key == nil {
			return false, nil, nil, detail(ErrMalformedXML, "object %d has no Key", i+1)
		}
		keys[i], versions[i] = *o.Key, o.VersionID
	}
	return quiet, keys, versions, nil
}

// --- responses ---

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type listAllMyBucketsResult struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
}

type objectEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listBucketResultV2 struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []objectEntry  `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listBucketResultV1 struct {
	XMLName        xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name           string         `xml:"Name"`
	Prefix         string         `xml:"Prefix"`
	Marker         string         `xml:"Marker"`
	NextMarker     string         `xml:"NextMarker,omitempty"`
	MaxKeys        int            `xml:"MaxKeys"`
	Delimiter      string         `xml:"Delimiter,omitempty"`
	IsTruncated    bool           `xml:"IsTruncated"`
	EncodingType   string         `xml:"EncodingType,omitempty"`
	Contents       []objectEntry  `xml:"Contents"`
	CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
}

// listVersionsResult is ListObjectVersions' answer. Buckets are never
// versioned (yet): every object is its key's one version, "null", latest.
type listVersionsResult struct {
	XMLName             xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string         `xml:"Name"`
	Prefix              string         `xml:"Prefix"`
	KeyMarker           string         `xml:"KeyMarker"`
	VersionIDMarker     string         `xml:"VersionIdMarker"`
	NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int            `xml:"MaxKeys"`
	Delimiter           string         `xml:"Delimiter,omitempty"`
	IsTruncated         bool           `xml:"IsTruncated"`
	EncodingType        string         `xml:"EncodingType,omitempty"`
	Versions            []versionEntry `xml:"Version"`
	CommonPrefixes      []commonPrefix `xml:"CommonPrefixes"`
}

type versionEntry struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
}

type deleteResult struct {
	XMLName xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedEntry `xml:"Deleted"`
	Errors  []deleteError  `xml:"Error"`
}

type deletedEntry struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

type completeMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

type partEntry struct {
	PartNumber        int    `xml:"PartNumber"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	Size              int64  `xml:"Size"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	Initiator            owner       `xml:"Initiator"`
	Owner                owner       `xml:"Owner"`
	StorageClass         string      `xml:"StorageClass"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	Parts                []partEntry `xml:"Part"`
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listMultipartUploadsResult struct {
	XMLName            xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
	Prefix             string         `xml:"Prefix"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	EncodingType       string         `xml:"EncodingType,omitempty"`
	Uploads            []uploadEntry  `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}
