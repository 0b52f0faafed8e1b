package cluster_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/persistence"
)

// These tests run real `durable serve` processes on 127.0.0.1, sharing one
// task hub directory, and kill them with SIGKILL.

// buildDurable builds cmd/durable once per test binary.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func durableBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "durable-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "durable")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/durable-go/durable/cmd/durable").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// node is one `durable serve` process of a test cluster.
type node struct {
	name        string
	http        string // base URL
	clusterAddr string
	args        []string
	cmd         *exec.Cmd
	log         *bytes.Buffer
	mu          *sync.Mutex
}

type testCluster struct {
	t     *testing.T
	dir   string
	nodes []*node
}

func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	bin := durableBinary(t)
	ports := freePorts(t, 2*n)
	c := &testCluster{t: t, dir: t.TempDir()}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		nd := &node{
			name:        fmt.Sprintf("node%d", i+1),
			http:        fmt.Sprintf("http://127.0.0.1:%d", ports[i]),
			clusterAddr: peers[i],
			log:         &bytes.Buffer{},
			mu:          &sync.Mutex{},
		}
		nd.args = []string{"serve", "--addr", strings.TrimPrefix(nd.http, "http://"), "--data", c.dir,
			"--cluster-addr", nd.clusterAddr, "--cluster-peers", strings.Join(peers, ","), "--log-level", "info"}
		c.nodes = append(c.nodes, nd)
		c.start(nd, bin)
	}
	t.Cleanup(c.killAll)
	for _, nd := range c.nodes {
		c.waitHealthy(nd, 60*time.Second)
	}
	return c
}

// killAll kills what still runs and, if the test failed, shows the logs.
func (c *testCluster) killAll() {
	for _, nd := range c.nodes {
		if nd.cmd != nil && nd.cmd.ProcessState == nil {
			_ = nd.cmd.Process.Kill()
			_ = nd.cmd.Wait()
		}
	}
	if c.t.Failed() {
		for _, nd := range c.nodes {
			nd.mu.Lock()
			c.t.Logf("---- %s log (last 8 KB) ----\n%s", nd.name, tail(nd.log.String(), 8<<10))
			nd.mu.Unlock()
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (c *testCluster) start(nd *node, bin string) {
	cmd := exec.Command(bin, nd.args...)
	cmd.Stdout = lockedWriter{nd.mu, nd.log}
	cmd.Stderr = lockedWriter{nd.mu, nd.log}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.cmd = cmd
}

func (c *testCluster) kill(nd *node) {
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	_ = nd.cmd.Wait()
}

// stop ends a node gracefully (SIGTERM) and waits for it.
func (c *testCluster) stop(nd *node) {
	_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	_ = nd.cmd.Wait()
}

func (c *testCluster) restart(nd *node) {
	c.start(nd, durableBinary(c.t))
}

func (c *testCluster) waitHealthy(nd *node, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(nd.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("%s did not become healthy within %v", nd.name, within)
}

const hook = "/runtime/webhooks/durabletask"

// requestClient gives up on one request after a while (do then tries
// again), so a node that never answers fails the test instead of hanging it.
var requestClient = &http.Client{Timeout: 20 * time.Second}

// do sends a request to a node, retrying while the node answers 503 or
// cannot be reached (a cluster that is moving partitions) until within.
func do(t *testing.T, method, url string, body any, within time.Duration) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequest(method, url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := requestClient.Do(req)
		if err == nil {
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return resp.StatusCode, out
			}
			err = fmt.Errorf("503: %s", out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type status struct {
	RuntimeStatus string          `json:"runtimeStatus"`
	Output        json.RawMessage `json:"output"`
}

func getStatus(t *testing.T, base, id string) status {
	t.Helper()
	code, body := do(t, "GET", base+hook+"/instances/"+id, nil, 30*time.Second)
	if code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("status of %s: %d %s", id, code, body)
	}
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status of %s: %v: %s", id, err, body)
	}
	return st
}

// workload starts instances of every kind through every node in turn.
type workload struct {
	tag                            string // prefixes every id and entity key
	hello, fanout, approval, tally []string
	signals                        int
}

func startWorkload(t *testing.T, c *testCluster, each int, tag string) *workload {
	t.Helper()
	w := &workload{tag: tag}
	for i := range each {
		nd := c.nodes[i%len(c.nodes)]
		start := func(name, id string, input any) {
			code, body := do(t, "POST", nd.http+hook+"/orchestrators/"+name+"/"+id, input, 30*time.Second)
			if code != http.StatusAccepted {
				t.Fatalf("start %s on %s: %d %s", id, nd.name, code, body)
			}
		}
		id := fmt.Sprintf("%shello-%d", tag, i)
		start("HelloCities", id, nil)
		w.hello = append(w.hello, id)
		id = fmt.Sprintf("%sfanout-%d", tag, i)
		start("FanOutFanIn", id, 20)
		w.fanout = append(w.fanout, id)
		id = fmt.Sprintf("%sapproval-%d", tag, i)
		start("WaitForApproval", id, nil)
		w.approval = append(w.approval, id)
		// A sub-orchestration, an entity signal and an entity call: messages
		// between partitions, most of them on other nodes.
		id = fmt.Sprintf("%stally-%d", tag, i)
		start("Tally", id, fmt.Sprintf("%st%d", tag, i))
		w.tally = append(w.tally, id)
		for k := range 5 {
			code, body := do(t, "POST", nd.http+hook+fmt.Sprintf("/entities/Counter/%sk%d?op=add", tag, k), 1, 30*time.Second)
			if code != http.StatusAccepted {
				t.Fatalf("signal on %s: %d %s", nd.name, code, body)
			}
			w.signals++
		}
	}
	return w
}

// approveAll raises Approval through every node in turn.
func (w *workload) approveAll(t *testing.T, c *testCluster) {
	for i, id := range w.approval {
		nd := c.live()[i%len(c.live())]
		code, body := do(t, "POST", nd.http+hook+"/instances/"+id+"/raiseEvent/Approval", true, 60*time.Second)
		if code != http.StatusAccepted {
			t.Fatalf("approve %s on %s: %d %s", id, nd.name, code, body)
		}
	}
}

func (c *testCluster) live() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd.cmd.ProcessState == nil {
			out = append(out, nd)
		}
	}
	return out
}

// verify waits, through every live node, for every instance to finish
// right and every counter to be right.
func (w *workload) verify(t *testing.T, c *testCluster, within time.Duration) {
	t.Helper()
	want := map[string]string{}
	for _, id := range w.hello {
		want[id] = `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
	}
	for _, id := range w.fanout {
		want[id] = "420" // 2 × (1+…+20)
	}
	for _, id := range w.approval {
		want[id] = `"approved"`
	}
	for _, id := range w.tally {
		want[id] = "1" // its own counter, signaled once
	}
	deadline := time.Now().Add(within)
	for id, out := range want {
		for {
			nd := c.live()[len(id)%len(c.live())]
			st := getStatus(t, nd.http, id)
			if st.RuntimeStatus == "Completed" {
				if string(st.Output) != out {
					t.Fatalf("%s: output %s, want %s", id, st.Output, out)
				}
				break
			}
			if st.RuntimeStatus == "Failed" || st.RuntimeStatus == "Terminated" {
				t.Fatalf("%s: %s %s", id, st.RuntimeStatus, st.Output)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s after %v", id, st.RuntimeStatus, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	per := w.signals / 5
	for k := range 5 {
		for {
			nd := c.live()[k%len(c.live())]
			code, body := do(t, "GET", nd.http+hook+fmt.Sprintf("/entities/Counter/%sk%d", w.tag, k), nil, 30*time.Second)
			if code == http.StatusOK && strings.TrimSpace(string(body)) == fmt.Sprint(per) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("counter k%d: %d %s, want %d", k, code, body, per)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestClusterOfThreeServesEverythingFromAnyNode(t *testing.T) {
	c := startCluster(t, 3)
	w := startWorkload(t, c, 6, "")
	w.approveAll(t, c)
	w.verify(t, c, 60*time.Second)
	// Every node lists every instance, a page of 5 at a time: the pages
	// merge the partitions of all nodes, and continue where they ended.
	want := len(w.hello) + len(w.fanout) + len(w.approval) + 2*len(w.tally) // Tally's children too
	for _, nd := range c.nodes {
		if got := listAll(t, nd, 5); got != want {
			t.Fatalf("%s lists %d instances, want %d", nd.name, got, want)
		}
	}
}

// listAll pages through every instance through nd and returns how many
// distinct ids it saw (failing on a repeated one).
func listAll(t *testing.T, nd *node, top int) int {
	t.Helper()
	seen := map[string]bool{}
	token := ""
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s%s/instances?top=%d", nd.http, hook, top), nil)
		if token != "" {
			req.Header.Set("x-ms-continuation-token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []struct {
			InstanceID string `json:"instanceId"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("list through %s: %d %v", nd.name, resp.StatusCode, err)
		}
		if len(page) > top {
			t.Fatalf("a page of %d, asked for %d", len(page), top)
		}
		for _, st := range page {
			if seen[st.InstanceID] {
				t.Fatalf("%s listed twice", st.InstanceID)
			}
			seen[st.InstanceID] = true
		}
		if token = resp.Header.Get("x-ms-continuation-token"); token == "" {
			return len(seen)
		}
	}
}

// probeIDs returns one instance id in each partition of a cluster hub.
func probeIDs() []string {
	ids := make([]string, persistence.DefaultClusterPartitions)
	for found, i := 0, 0; found < len(ids); i++ {
		id := fmt.Sprintf("probe-%d", i)
		if p := persistence.PartitionOf(id, len(ids)); ids[p] == "" {
			ids[p] = id
			found++
		}
	}
	return ids
}

// allPartitionsServing returns how long it took, from now, until an
// instance of every partition could be read through nd.
func allPartitionsServing(t *testing.T, nd *node, probes []string) time.Duration {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for _, id := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			getStatus(t, nd.http, id)
			mu.Lock()
			worst = max(worst, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	return worst
}

// clusterRounds makes the kill test longer: that many rounds of a workload,
// a SIGKILL of the next node and its restart (CI runs one).
var clusterRounds = flag.Int("cluster-rounds", 1, "rounds of workload, kill and restart in TestClusterSurvivesTheKillOfANode")

func TestClusterSurvivesTheKillOfANode(t *testing.T) {
	c := startCluster(t, 3)
	probes := probeIDs()
	for _, id := range probes {
		code, body := do(t, "POST", c.nodes[0].http+hook+"/orchestrators/HelloCities/"+id, nil, 30*time.Second)
		if code != http.StatusAccepted {
			t.Fatalf("start %s: %d %s", id, code, body)
		}
	}
	var worstServing, worstDone time.Duration
	for round := range *clusterRounds {
		w := startWorkload(t, c, 9, fmt.Sprintf("r%d-", round))
		killed := c.nodes[(1+round)%len(c.nodes)]
		survivor := c.nodes[(2+round)%len(c.nodes)]
		c.kill(killed)
		start := time.Now()
		serving := allPartitionsServing(t, survivor, probes)
		w.approveAll(t, c)
		w.verify(t, c, 90*time.Second)
		done := time.Since(start)
		t.Logf("round %d: killed %s: every partition serving again after %v, every instance done after %v",
			round+1, killed.name, serving.Round(time.Millisecond), done.Round(time.Millisecond))
		worstServing, worstDone = max(worstServing, serving), max(worstDone, done)
		if round+1 < *clusterRounds {
			c.restart(killed)
			c.waitHealthy(killed, 60*time.Second)
		}
	}
	t.Logf("%d rounds: worst kill -> every partition serving %v, worst kill -> every instance done %v",
		*clusterRounds, worstServing.Round(time.Millisecond), worstDone.Round(time.Millisecond))
}

func TestClusterRollingRestartLosesNothing(t *testing.T) {
	c := startCluster(t, 3)
	w := startWorkload(t, c, 6, "")
	for _, nd := range c.nodes {
		c.stop(nd)
		c.restart(nd)
		c.waitHealthy(nd, 60*time.Second)
	}
	w.approveAll(t, c)
	w.verify(t, c, 90*time.Second)
}

// TestAPausedNodeThatTheClusterDroppedExitsAndRejoinsWhenRestarted stops a
// node (SIGSTOP, as a frozen VM or a long pause would) for longer than the
// drop time: the others drop it. A paused process still holds its
// partitions' directory locks, so nobody can take its partitions while it
// is paused (Badger's lock is what keeps two processes off one database).
// Resumed, it learns that it was dropped (protoactor's members never let it
// back in) and exits with an error, releasing the locks, instead of
// lingering as a member nobody accepts: the others then take its
// partitions and serve everything; started again, it rejoins.
func TestAPausedNodeThatTheClusterDroppedExitsAndRejoinsWhenRestarted(t *testing.T) {
	c := startCluster(t, 3)
	paused := c.nodes[2]
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // past the drop time (3 s): node1 and node2 drop node3
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- paused.cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("the dropped node exited with %v, want a non-zero exit code", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the dropped node did not exit within 60 s of resuming")
	}
	paused.mu.Lock()
	log := paused.log.String()
	paused.mu.Unlock()
	if !strings.Contains(log, "the cluster dropped this node") {
		t.Errorf("the dropped node's log does not say why it exits:\n%s", tail(log, 3000))
	}
	w := startWorkload(t, &testCluster{t: t, dir: c.dir, nodes: c.nodes[:2]}, 3, "paused-")
	c.restart(paused)
	c.waitHealthy(paused, 60*time.Second)
	w.approveAll(t, c)
	w.verify(t, c, 90*time.Second)
}
