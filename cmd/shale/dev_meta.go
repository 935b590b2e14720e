package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
)

// Raft timeouts of a dev cluster's meta replicas: a killed leader is
// replaced in about a second (a follower waits 1–2 heartbeat timeouts, then
// an election), short enough to watch, long enough for a busy laptop.
const (
	devHeartbeat   = 500 * time.Millisecond
	devElection    = 500 * time.Millisecond
	devLeaderLease = 250 * time.Millisecond
)

// startDevMetas picks the ports of the dev cluster's meta replicas (pp
// already holds the nodes'), releases every pick and starts the replicas, each in its own
// zone (round robin over --zones), and returns their cluster.json records.
// A fresh cluster's replicas found the group together (--peer). A cluster
// that ran before keeps its replicas, addresses and data. A data dir of a
// single meta from before replication (DATA/meta holding a pebble store) is
// adopted: meta-1 starts on it as a group of one whose first snapshot is
// the old store, and the others join it (shale admin meta add's path) and
// catch up by snapshot.
func startDevMetas(ctx context.Context, exe, data string, prev devcluster.File, f devFlags, secretFile string,
	itls map[string]internalTLSFlags, pp *ports, add func(*child)) ([]devcluster.MetaReplica, error) {
	n := f.metaReplicas
	if len(prev.Metas) > 0 && len(prev.Metas) != n {
		fmt.Fprintf(os.Stderr, "shale dev: the cluster has %d meta replicas; keeping them (shale admin meta add|remove changes the group)\n", len(prev.Metas))
		n = len(prev.Metas)
	}
	// DATA/meta was the single meta's store. With no replicas on record
	// it is adopted, whatever a run that stopped half-way left in it
	// (the old store, an adoption in progress, or meta-1's replica).
	legacyDir := filepath.Join(data, "meta")
	_, err := os.Stat(legacyDir)
	adopt := len(prev.Metas) == 0 && err == nil
	prevByID := map[string]devcluster.MetaReplica{}
	for _, m := range prev.Metas {
		prevByID[m.ID] = m
	}
	reps := make([]devcluster.MetaReplica, n)
	var peers []string
	for i := range reps {
		id := fmt.Sprintf("meta-%d", i+1)
		p := prevByID[id]
		r := devcluster.MetaReplica{ID: id, Zone: fmt.Sprintf("zone-%d", i%f.zones+1), Data: p.Data}
		if p.Zone != "" {
			r.Zone = p.Zone
		}
		if r.Data == "" {
			r.Data = filepath.Join(data, "metas", id)
			if adopt && i == 0 {
				r.Data = legacyDir
			}
		}
		prevAddr, prevMetrics := p.Addr, p.Metrics
		if adopt && i == 0 {
			prevAddr, prevMetrics = prev.Meta, prev.MetaMetrics
		}
		if r.Addr, err = pp.pick(prevAddr); err != nil {
			return nil, err
		}
		if r.Raft, err = pp.pick(p.Raft); err != nil {
			return nil, err
		}
		if r.Metrics, err = pp.pick(prevMetrics); err != nil {
			return nil, err
		}
		reps[i] = r
		peers = append(peers, "--peer", fmt.Sprintf("id=%s,addr=%s,raft=%s,zone=%s", r.ID, r.Addr, r.Raft, r.Zone))
	}
	pp.release() // every port is picked: the processes bind them now
	for i := range reps {
		r := &reps[i]
		r.Args = []string{"meta", "--id", r.ID, "--data", r.Data, "--listen", r.Addr, "--raft-listen", r.Raft,
			"--zone", r.Zone, "--metrics-listen", r.Metrics, "--secret-file", secretFile,
			"--heartbeat-timeout", devHeartbeat.String(), "--election-timeout", devElection.String(),
			"--leader-lease", devLeaderLease.String(),
			"--down-after", f.downAfter.String(), "--out-after", f.outAfter.String(),
			"--k", strconv.Itoa(f.k), "--m", strconv.Itoa(f.m), "--repair-rate", strconv.FormatInt(f.repairRate, 10),
			"--abort-uploads-after", f.abortUploadsAfter.String()}
		if f.blockSize > 0 {
			r.Args = append(r.Args, "--block-size", strconv.Itoa(f.blockSize))
		}
		if f.repairConcurrency > 0 {
			r.Args = append(r.Args, "--repair-concurrency", strconv.Itoa(f.repairConcurrency))
		}
		r.Args = append(r.Args, "--procs", strconv.Itoa(f.procsEach()))
		switch {
		case adopt && i > 0:
			r.Args = append(r.Args, "--join")
		case !adopt:
			r.Args = append(r.Args, peers...)
		}
		r.Args = append(r.Args, itls[r.ID].args()...)
		c, _, err := startChild(ctx, r.ID, exe, r.Args, filepath.Join(data, "logs", r.ID+".log"), "meta listening on ")
		if err != nil {
			return nil, err
		}
		add(c)
		r.PID = c.cmd.Process.Pid
	}
	if adopt {
		// On record before the others join: a run stopped from here on
		// restarts these replicas on the same data and addresses.
		rec := prev
		rec.Metas, rec.Meta, rec.MetaPID, rec.MetaArgs, rec.MetaMetrics = reps, devMetaAddrs(reps), 0, nil, ""
		if err := devcluster.Write(data, rec); err != nil {
			return nil, err
		}
		if err := devJoin(ctx, secretFile, itls, reps); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "shale dev: adopted the single meta in %s as %s; %d replicas now\n", legacyDir, reps[0].ID, n)
	}
	return reps, nil
}

// devMetaAddrs is the comma-separated list of the replicas' API addresses.
func devMetaAddrs(reps []devcluster.MetaReplica) string {
	addrs := make([]string, len(reps))
	for i, r := range reps {
		addrs[i] = r.Addr
	}
	return strings.Join(addrs, ",")
}

// devJoin adds reps[1:] to the group meta-1 leads (joinReplica: as
// non-voters until they have caught up).
func devJoin(ctx context.Context, secretFile string, itls map[string]internalTLSFlags, reps []devcluster.MetaReplica) error {
	secret, err := peerauth.LoadSecret(secretFile)
	if err != nil {
		return err
	}
	inet, err := itls["admin"].load()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	mc := newMetaClient(reps[0].Addr, secret, inet)
	for _, r := range reps[1:] {
		rec := meta.Replica{ID: r.ID, Addr: r.Addr, Raft: r.Raft, Zone: r.Zone}
		if err := joinReplica(ctx, mc, replicaClient(r.Addr, secret, inet, 3*time.Second), rec, os.Stderr); err != nil {
			return fmt.Errorf("add meta replica %s: %w", r.ID, err)
		}
	}
	return nil
}
