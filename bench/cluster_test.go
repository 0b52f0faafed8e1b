//go:build !race

// protoactor's cluster and remote code trip the race detector (upstream
// races), so the cluster run is left out of -race builds.

package main

import (
	"testing"
	"time"
)

// -cluster 3 through the command's own run loop: the single-node W1 row,
// then W1 on three runtimes in this process, every output verified.
func TestW1OnAClusterOfThreeNextToSingleNode(t *testing.T) {
	results, err := run(Options{
		Workloads: []string{"W1"}, N: 30, Cluster: 3, Mode: "nosync",
		Dir: t.TempDir(), FsyncCount: 10, Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want the single-node row and the cluster row: %+v", len(results), results)
	}
	single, cl := results[0], results[1]
	if single.System != "durable" || single.ClusterNodes != 0 || !single.Verified || single.Error != "" || single.N != 30 {
		t.Fatalf("single-node row: %+v", single)
	}
	if cl.System != "durable/cluster-3" || cl.ClusterNodes != 3 || cl.N != 30 || cl.Activities != 90 {
		t.Fatalf("cluster row: %+v", cl)
	}
	if !cl.Verified || cl.Error != "" || cl.Wrong != 0 || cl.PerSecond <= 0 || cl.CPUUsPerOp <= 0 {
		t.Fatalf("cluster row not verified: %+v", cl)
	}
	if cl.Partitions != 12 || cl.ClusterReadyMs <= 0 || cl.SingleNodeRatio <= 0 || cl.CommitsPerTransaction < 1 {
		t.Fatalf("cluster figures missing: %+v", cl)
	}
	if want := "durable cluster of 3 (one process, loopback)"; cl.Note != want {
		t.Fatalf("note %q, want %q", cl.Note, want)
	}
}
