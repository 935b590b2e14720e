package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestListObjectVersionsUnversioned: ListObjectVersions on a bucket that
// was never versioned lists every object once, as version "null" and
// latest, page by page (key markers) and with a delimiter; object requests
// take versionId "null" and refuse any other (GET, DELETE, copy source,
// multi-delete), leaving the object in place — and emptying
// the bucket the way tools do (list versions, delete them by version id in
// batches, then delete the bucket) works, through aws-sdk-go-v2's
// paginator and the aws cli.
func TestListObjectVersionsUnversioned(t *testing.T) {
	c := startDev(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const bucket = "versions"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 23 {
		key := fmt.Sprintf("d%d/k%02d", i%3, i)
		if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(key))}); err != nil {
			t.Fatal(err)
		}
		want = append(want, key)
	}
	sort.Strings(want)

	// Pages of 5 through the SDK's paginator.
	var got []string
	p := s3.NewListObjectVersionsPaginator(c.S3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), MaxKeys: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) != "null" || !aws.ToBool(v.IsLatest) || aws.ToInt64(v.Size) != int64(len(aws.ToString(v.Key))) || aws.ToString(v.ETag) == "" {
				t.Fatalf("version %+v", v)
			}
			got = append(got, aws.ToString(v.Key))
		}
		if len(out.DeleteMarkers) != 0 {
			t.Fatalf("delete markers in a never-versioned bucket: %+v", out.DeleteMarkers)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || pages != 5 {
		t.Fatalf("%d pages listed %v, want %v", pages, got, want)
	}

	// A delimiter rolls keys up into common prefixes.
	out, err := c.S3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var cps []string
	for _, p := range out.CommonPrefixes {
		cps = append(cps, aws.ToString(p.Prefix))
	}
	if strings.Join(cps, ",") != "d0/,d1/,d2/" || len(out.Versions) != 0 {
		t.Fatalf("with a delimiter: prefixes %v, versions %d", cps, len(out.Versions))
	}
	// A version-id marker other than "null" is refused.
	if _, err := c.S3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket),
		KeyMarker: aws.String("d0/k00"), VersionIdMarker: aws.String("3f2a")}); errCode(err) != "InvalidArgument" {
		t.Fatalf("a version-id marker not \"null\": %v", err)
	}

	// The aws cli sees the same versions.
	cli, _ := newAWSCLI(t, c)
	stdout, stderr, err := cli("s3api", "list-object-versions", "--bucket", bucket, "--output", "json")
	if err != nil {
		t.Fatalf("aws s3api list-object-versions: %v\n%s", err, stderr)
	}
	var lv struct {
		Versions []struct{ Key, VersionId string }
	}
	if err := json.Unmarshal([]byte(stdout), &lv); err != nil || len(lv.Versions) != len(want) || lv.Versions[0].VersionId != "null" {
		t.Fatalf("aws cli listed %+v (%v)\n%s", lv.Versions, err, stdout)
	}

	// Object requests take versionId "null" (the one version there is);
	// any other id is refused, never served or deleted as the current
	// object.
	first := want[0]
	if g, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(first), VersionId: aws.String("null")}); err != nil {
		t.Fatalf("get version null: %v", err)
	} else {
		g.Body.Close()
	}
	if _, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(first), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ")}); errCode(err) != "InvalidArgument" {
		t.Fatalf("get another version: %v", err)
	}
	if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(first), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ")}); errCode(err) != "InvalidArgument" {
		t.Fatalf("delete another version: %v", err)
	}
	if _, err := c.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("copy"),
		CopySource: aws.String(bucket + "/" + first + "?versionId=3HL4kqtJlcpXroDTDmJ")}); errCode(err) != "InvalidArgument" {
		t.Fatalf("copy from another version: %v", err)
	}
	dr0, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String(first), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ")}}}})
	if err != nil || len(dr0.Deleted) != 0 || len(dr0.Errors) != 1 || aws.ToString(dr0.Errors[0].Code) != "InvalidArgument" {
		t.Fatalf("multi-delete of another version: %v %+v", err, dr0)
	}
	if _, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(first)}); err != nil {
		t.Fatalf("the object after refused deletes of other versions: %v", err)
	}

	// Empty the bucket as tools do: list versions, delete them by id.
	var ids []types.ObjectIdentifier
	for _, k := range want {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k), VersionId: aws.String("null")})
	}
	dr, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids}})
	if err != nil || len(dr.Errors) != 0 || len(dr.Deleted) != len(want) {
		t.Fatalf("delete by version: %v, %d deleted, errors %+v", err, len(dr.Deleted), dr.Errors)
	}
	if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("delete the emptied bucket: %v", err)
	}
}
