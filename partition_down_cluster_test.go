package durable_test

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/cluster"
)

// freeClusterAddr returns a loopback address with a port free right now.
func freeClusterAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	must(ln.Close())
	return addr
}

// TestInAClusterADamagedPartitionIsDownWhileTheOthersServe is the single
// node test on a one-member cluster: the claim of the damaged partition
// fails, the partition stays placed and answers ErrPartitionDown naming its
// directory (at once, not after retrying until the deadline), the member
// becomes ready, NodeStats names the partition, and the other partitions
// complete their instances.
func TestInAClusterADamagedPartitionIsDownWhileTheOthersServe(t *testing.T) {
	const n = 4
	dir := t.TempDir()
	ctx := waitCtx(t)
	addr := freeClusterAddr(t)
	opts := func() durable.Options {
		return durable.Options{Dir: dir, Partitions: n, Cluster: &cluster.Config{Addr: addr, Peers: []string{addr}}}
	}
	rt := open(t, opts(), registerWaitAndCounter)
	ids := make([]string, n)
	for p := range ids {
		ids[p] = idOnPartition("wait", p, n)
		if _, err := rt.Client().Start(ctx, "Wait", nil, durable.WithInstanceID(ids[p])); err != nil {
			t.Fatal(err)
		}
	}
	must(rt.Close())
	partDir := damageManifest(t, dir, "garbage")

	rt = open(t, opts(), registerWaitAndCounter)
	c := rt.Client()
	waitFor(t, "the member ready", rt.Ready)
	_, err := c.Status(ctx, ids[1])
	if !errors.Is(err, durable.ErrPartitionDown) || !strings.Contains(err.Error(), partDir) {
		t.Fatalf("status on the damaged partition: %v, want ErrPartitionDown naming %s", err, partDir)
	}
	if err := c.RaiseEvent(ctx, ids[1], "go", "x"); !errors.Is(err, durable.ErrPartitionDown) {
		t.Fatalf("raise on the damaged partition: %v", err)
	}
	down := rt.NodeStats().PartitionsDown
	if len(down) != 1 || down[0].Partition != 1 || down[0].Dir != filepath.Join(dir, "partition-001") {
		t.Fatalf("PartitionsDown %+v", down)
	}
	page, err := c.List(ctx, durable.Query{})
	if err != nil || len(page.Instances) != n-1 || fmt.Sprint(page.PartitionsDown) != "[1]" {
		t.Fatalf("list: %v, %+v", err, page)
	}
	for p, id := range ids {
		if p == 1 {
			continue
		}
		must(c.RaiseEvent(ctx, id, "go", "fine"))
		waitForStatus(t, rt, id, durable.StatusCompleted)
	}
}
