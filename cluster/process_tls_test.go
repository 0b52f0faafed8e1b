//go:build !race

package cluster_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/cluster"
)

// A process without a certificate of the cluster's CA cannot join: the
// members never list it, it never sees a majority, so it never becomes
// healthy, takes no partition and answers requests with 503; the cluster
// goes on serving everything, through its members only.
func TestClusterShutsOutANodeWithoutTheClustersCertificate(t *testing.T) {
	bin := durableBinary(t)
	ports := freePorts(t, 6)
	c := &testCluster{t: t, dir: t.TempDir()}
	certs := t.TempDir()
	ours := cluster.NewTestCerts(t, certs, "ours")
	theirs := cluster.NewTestCerts(t, certs, "theirs")
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[3+i]))
	}
	for i := range 3 {
		files := ours.Node(t, fmt.Sprintf("node%d", i+1))
		if i == 2 {
			files = theirs.Node(t, "intruder") // listed as a peer, but not the cluster's CA
		}
		nd := &node{
			name: fmt.Sprintf("node%d", i+1), http: fmt.Sprintf("http://127.0.0.1:%d", ports[i]),
			clusterAddr: peers[i], log: &bytes.Buffer{}, mu: &sync.Mutex{},
		}
		nd.args = []string{"serve", "--addr", strings.TrimPrefix(nd.http, "http://"), "--data", c.dir,
			"--cluster-addr", nd.clusterAddr, "--cluster-peers", strings.Join(peers, ","), "--log-level", "info",
			"--cluster-tls-cert", files.CertFile, "--cluster-tls-key", files.KeyFile, "--cluster-tls-ca", files.CAFile}
		c.nodes = append(c.nodes, nd)
		c.start(nd, bin)
	}
	t.Cleanup(c.killAll)
	c.waitHealthy(c.nodes[0], 60*time.Second)
	c.waitHealthy(c.nodes[1], 60*time.Second)
	intruder := c.nodes[2]
	members := &testCluster{t: t, dir: c.dir, nodes: c.nodes[:2]} // the cluster, as far as the workload goes

	w := startWorkload(t, members, 4, "")
	w.approveAll(t, members)
	w.verify(t, members, 60*time.Second)

	// Long enough for the intruder to have joined, had it been let in.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(intruder.http + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("the node without the cluster's certificate became healthy")
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(intruder.http + hook + "/instances/" + w.hello[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the intruder answered a status read with %d, want 503", resp.StatusCode)
	}
	intruder.mu.Lock()
	log := intruder.log.String()
	intruder.mu.Unlock()
	if strings.Contains(log, "partition claimed") {
		t.Fatalf("the intruder claimed a partition:\n%s", tail(log, 4<<10))
	}
}
