package devcluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shale-store/shale/internal/privfs"
)

// FileName is the name of the cluster file inside a dev cluster's data dir.
const FileName = "cluster.json"

// File is DATA/cluster.json: where everything of a dev cluster is.
type File struct {
	S3 string `json:"s3"`
	// Meta is the comma-separated list of the meta replicas' HTTP
	// addresses (Metas[i].Addr), what every client's --meta takes.
	Meta string `json:"meta"`
	// Metas are the meta replicas, one raft group.
	Metas []MetaReplica `json:"metas"`
	// MetaPID, MetaArgs and MetaMetrics are a single-meta cluster file's
	// (before replicas): read to adopt its data, never written.
	MetaPID     int      `json:"meta_pid,omitempty"`
	MetaArgs    []string `json:"meta_args,omitempty"`
	MetaMetrics string   `json:"meta_metrics,omitempty"`
	GatewayPID  int      `json:"gateway_pid"`
	GatewayArgs []string `json:"gateway_args"`
	SecretFile  string   `json:"secret_file"`
	Credentials string   `json:"credentials_file"`
	CACert      string   `json:"ca_cert,omitempty"`
	// InternalTLS, when set, is the mutual TLS between the cluster's
	// processes: the files a tool (admin, tests, benchmarks) uses to reach
	// meta and the nodes.
	InternalTLS *InternalTLS `json:"internal_tls,omitempty"`
	K           int          `json:"k"`
	M           int          `json:"m"`
	Nodes       []Node       `json:"nodes"`
	// DevPID is the pid of the `shale dev` that wrote the file and
	// supervises its processes; 0 in a file written before it was
	// recorded.
	DevPID int `json:"dev_pid,omitempty"`
}

// InternalTLS names a client certificate, its key and the cluster CA.
type InternalTLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// MetaReplica is one meta replica process of a dev cluster.
type MetaReplica struct {
	ID string `json:"id"` // its raft server id: meta-1, meta-2, …
	// Addr is its HTTP API (what clients dial), Raft its raft transport,
	// Metrics its Prometheus listener (loopback).
	Addr    string   `json:"addr"`
	Raft    string   `json:"raft"`
	Metrics string   `json:"metrics,omitempty"`
	Zone    string   `json:"zone"`
	PID     int      `json:"pid"`
	Data    string   `json:"data"`
	Args    []string `json:"args"`
}

// Node is one storage node process of a dev cluster.
type Node struct {
	ID   string   `json:"id"`
	Addr string   `json:"addr"`
	Zone string   `json:"zone"`
	Rack string   `json:"rack"`
	Host string   `json:"host"`
	PID  int      `json:"pid"`
	Data string   `json:"data"`
	Args []string `json:"args"`
	// Capacity is the node's --capacity in bytes; 0: its disk's free
	// space.
	Capacity int64 `json:"capacity,omitempty"`
}

// Read reads dataDir/cluster.json. A file that cannot be read gives an error
// wrapping the *fs.PathError of the read (so errors.Is(err, fs.ErrNotExist)
// tells a cluster that has not written it yet); one that does not parse gives
// "parse PATH: ...".
func Read(dataDir string) (File, error) {
	var f File
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read cluster file: %w (is a dev cluster running on %s?)", err, dataDir)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("parse %s: %w", path, err)
	}
	return f, nil
}

// Write writes f to dataDir/cluster.json atomically (privfs.WriteFile: a
// temporary file renamed over it), readable by its owner only.
func Write(dataDir string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return privfs.WriteFile(filepath.Join(dataDir, FileName), append(b, '\n'))
}
