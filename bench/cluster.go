package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/cluster"
	"github.com/durable-go/durable/persistence"
)

// localCluster is a cluster of durable runtimes in this process: each its
// own durable.Open on one shared hub directory, with its own cluster port
// on 127.0.0.1, and every port in every runtime's peers. On one machine it
// measures what the cluster costs (requests that hop to the partition's
// node over loopback, ownership checks of the shared partitions), not how
// it scales.
type localCluster struct {
	dir   string
	addrs []string
	rts   []*durable.Runtime
	// ready is the time from starting the runtimes until every one
	// reported Ready (each partition placed and answering).
	ready      time.Duration
	partitions int
}

// clusterSystem is the system name of a result on a local cluster of size
// runtimes.
func clusterSystem(size int) string { return fmt.Sprintf("durable/cluster-%d", size) }

// markCluster names r as a result on a local cluster of size runtimes.
func markCluster(r *Result, size int) {
	r.System = clusterSystem(size)
	r.ClusterNodes = size
	addNote(r, fmt.Sprintf("durable cluster of %d (one process, loopback)", size))
}

// openCluster opens size runtimes as one cluster on a fresh hub directory
// under cfg.Dir, registers the same functions on each with register, starts
// them and waits until every one is Ready (or ctx ends).
func openCluster(ctx context.Context, cfg Config, name string, size int, register func(rt *durable.Runtime) error) (lc *localCluster, err error) {
	dir, err := os.MkdirTemp(cfg.Dir, name+"-cluster-*")
	if err != nil {
		return nil, fmt.Errorf("cluster hub directory: %w", err)
	}
	lc = &localCluster{dir: dir}
	defer func() {
		if err != nil {
			lc.close()
			lc = nil
		}
	}()
	if lc.addrs, err = loopbackAddrs(size); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	for i, addr := range lc.addrs {
		rt, err := durable.Open(durable.Options{
			Dir: dir, Partitions: cfg.Partitions, NoSync: cfg.NoSync, IdleTimeout: cfg.IdleTimeout,
			Logger:  logger.With("node", i+1, "cluster_addr", addr),
			Cluster: &cluster.Config{Addr: addr, Peers: lc.addrs},
		})
		if err != nil {
			return nil, fmt.Errorf("open cluster node %d (%s): %w", i+1, addr, err)
		}
		lc.rts = append(lc.rts, rt)
		if err := register(rt); err != nil {
			return nil, fmt.Errorf("register on cluster node %d (%s): %w", i+1, addr, err)
		}
	}
	lc.partitions = cfg.Partitions
	if lc.partitions == 0 {
		lc.partitions = persistence.DefaultClusterPartitions
	}
	// Start them together: each joins on its own, and the partitions are
	// placed once the members see each other.
	t0 := time.Now()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, rt := range lc.rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rt.Start(); err != nil {
				errs[i] = fmt.Errorf("start cluster node %d (%s): %w", i+1, lc.addrs[i], err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := lc.waitReady(ctx); err != nil {
		return nil, err
	}
	lc.ready = time.Since(t0)
	return lc, nil
}

// waitReady polls until every runtime of lc is Ready.
func (lc *localCluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var notReady []string
		for i, rt := range lc.rts {
			if !rt.Ready() {
				notReady = append(notReady, fmt.Sprintf("%d (%s)", i+1, lc.addrs[i]))
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster of %d: nodes %v not ready: %w", len(lc.rts), notReady, ctx.Err())
		case <-tick.C:
		}
	}
}

// describe adds the cluster's setup to r.
func (lc *localCluster) describe(r *Result) {
	r.Partitions = lc.partitions
	r.ClusterReadyMs = round(ms(lc.ready), 1)
}

// close shuts every runtime down at once (one at a time, the survivors
// would claim each leaver's partitions) and removes the hub directory.
// Errors go to stderr: the results are verified by then.
func (lc *localCluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make([]error, len(lc.rts))
	var wg sync.WaitGroup
	for i, rt := range lc.rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rt.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("shut down cluster node %d (%s): %w", i+1, lc.addrs[i], err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	if err := os.RemoveAll(lc.dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: remove cluster hub:", err)
	}
}

// loopbackAddrs returns n distinct "127.0.0.1:port" addresses whose ports
// were free a moment ago (each is listened on, then closed, so that the
// runtimes can bind them).
func loopbackAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
