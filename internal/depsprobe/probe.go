package depsprobe

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/cockroachdb/pebble"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/klauspost/reedsolomon"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/minio/sha256-simd"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/zeebo/xxh3"
	_ "golang.org/x/sync/errgroup"
	_ "gopkg.in/yaml.v3"
)
