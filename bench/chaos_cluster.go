package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/cluster"
	"github.com/durable-go/durable/persistence"
)

// The chaos driver's cluster mode (go run ./bench -w chaos -cluster N
// -kills K -seed S): N member processes (this binary, re-executed with
// childEnv=chaos-member) form one cluster on one hub directory, each a
// durable runtime with Options.Cluster on its own 127.0.0.1 port and every
// port as its peers. Member i starts the plan's instances j with j mod N
// = i (so the starts are spread over the members), raises their approvals
// and waits for them. At each seeded moment one member (a seeded choice)
// is killed with SIGKILL while the others keep running, and restarted
// after a seeded delay; the next kill comes MinGap..MaxGap after it and
// not before the restarted member is ready again, so that a majority
// always serves. After the last kill every member runs its share to the
// end; then all are told to shut down at once (their stdin is closed),
// each must exit 0, and the parent verifies the hub as the single-process
// mode does.
//
// What is measured per kill: the partitions the killed member owned (its
// name in their ownership records, read just before the kill); the time
// until each was claimed again (its epoch moved on) and by whom (a
// survivor: a failover; the restarted member: a reclaim); and the time
// until the first activity execution in one of them on any member other
// than the killed process, which is "kill to progress".

const (
	chaosMemberEnv      = "chaos-member"
	chaosChildAddrEnv   = "DURABLE_CHAOS_CLUSTER_ADDR"
	chaosChildPeersEnv  = "DURABLE_CHAOS_CLUSTER_PEERS"
	chaosChildMemberEnv = "DURABLE_CHAOS_MEMBER" // "i/N"
	chaosChildPaceEnv   = "DURABLE_CHAOS_PACE"
)

// chaosMember is one member of the cluster and its current process.
type chaosMember struct {
	i     int
	addr  string
	gen   int // incarnation: events of an earlier one are stale
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// up: a process runs (started, its exit not seen yet).
	up, ready, allDone, killed, expelled bool
	startedAt                            time.Time
	pending                              string // its last "pending" line
}

// memberEvent is a line of a member's stdout, or its exit.
type memberEvent struct {
	member, gen int
	kind        string // ready, exec, all-done, expelled, error, exit
	partition   int    // exec
	text        string // error
	err         error  // exit
	at          time.Time
}

// chaosKill is what is tracked of one kill.
type chaosKill struct {
	at                time.Time
	victim, victimGen int
	owned             map[int]uint64 // partition -> epoch at the kill
	claimed           map[int]bool
	progress          bool
}

type chaosCluster struct {
	cfg     ChaosConfig
	out     io.Writer
	ctx     context.Context
	hubDir  string
	logPath string
	pace    time.Duration
	peers   []string
	members []*chaosMember
	events  chan memberEvent
	done    chan struct{} // closed when the driver returns: readers stop sending
	readers sync.WaitGroup
	res     *ChaosResult
	kill    *chaosKill // the last kill, while its figures are open
	// lastProgress: the last activity execution or change of a member's
	// unfinished instances.
	lastProgress time.Time
}

// errWaitTimedOut: waitFor's deadline passed before its condition held.
var errWaitTimedOut = errors.New("timed out")

// chaosStallAfter is how long the members may make no progress after the
// last kill before the driver calls the run stalled (see unstall).
const chaosStallAfter = 20 * time.Second

// chaosLostWait is how long a member's wait for completion runs before it
// checks whether the instance has completed meanwhile (a missed wake-up).
const chaosLostWait = 15 * time.Second

// chaosMaxStalls is how many stalls a run may unstick before it fails.
const chaosMaxStalls = 3

// unstall handles a run that makes no progress after the last kill: an
// instance waits for a message between partitions that was lost (the
// cluster's sender sends once to the placement it knows, and a message to
// a stale placement is dropped; the message is sent again when its
// partition is recovered, CLUSTER.md's Known limits), or a member's call
// waits for a partition that does not come back for it. It restarts every
// member in turn (SIGKILL, restart at once, wait until it is ready), so
// that every partition is recovered and every member's view refreshed,
// and counts the stall: a liveness defect the report names, not a wrong
// result.
func (c *chaosCluster) unstall() error {
	var waits []string
	for _, m := range c.members {
		if !m.allDone {
			waits = append(waits, fmt.Sprintf("member %d: %s", m.i+1, m.pending))
		}
	}
	if c.res.Stalls >= chaosMaxStalls {
		return fmt.Errorf("chaos: stalled a %d. time (no progress for %v): %s", c.res.Stalls+1, chaosStallAfter, strings.Join(waits, "; "))
	}
	c.res.Stalls++
	c.res.Stalled = append(c.res.Stalled, strings.Join(waits, "; "))
	fmt.Fprintf(c.out, "  STALL: no progress for %v (%s); restarting every member in turn\n", chaosStallAfter, strings.Join(waits, "; "))
	for _, m := range c.members {
		m.killed = true
		if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return fmt.Errorf("chaos: SIGKILL member %d: %w", m.i+1, err)
		}
		if err := c.waitFor(time.Now().Add(time.Minute), "the killed member's exit", func() bool { return !m.up }); err != nil {
			return err
		}
		if err := c.start(m); err != nil {
			return err
		}
		if err := c.waitFor(time.Now().Add(2*time.Minute), fmt.Sprintf("member %d ready after its restart", m.i+1), func() bool { return m.ready }); err != nil {
			return err
		}
	}
	c.lastProgress = time.Now()
	return nil
}

func runChaosCluster(cfg ChaosConfig) (*ChaosResult, error) {
	if cfg.Nodes < 3 {
		return nil, fmt.Errorf("chaos: -cluster %d: the cluster mode needs at least 3 members (a majority must survive a kill)", cfg.Nodes)
	}
	if cfg.MinGap == 0 {
		cfg.MinGap = 5 * time.Second
	}
	if cfg.MaxGap == 0 {
		cfg.MaxGap = 8 * time.Second
	}
	if cfg.MinDown == 0 {
		cfg.MinDown = 200 * time.Millisecond
	}
	if cfg.MaxDown == 0 {
		cfg.MaxDown = 4500 * time.Millisecond
	}
	if cfg.MaxGap < cfg.MinGap || cfg.MaxDown < cfg.MinDown {
		return nil, errors.New("chaos: MaxGap < MinGap or MaxDown < MinDown")
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	base, err := os.MkdirTemp(cfg.Dir, "chaos-cluster-*")
	if err != nil {
		return nil, fmt.Errorf("chaos: run directory: %w", err)
	}
	defer os.RemoveAll(base)
	plan := chaosPlan(cfg.Seed, cfg.Units)
	res := &ChaosResult{Seed: cfg.Seed, Instances: len(plan), Accounts: chaosAccounts, Counters: chaosCounters, Nodes: cfg.Nodes}
	peers, err := loopbackAddrs(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	// Pace the starts so that the plan spans the kills: each member starts
	// its share over about Kills × the mean gap (at most 400 a second).
	span := time.Duration(cfg.Kills) * (cfg.MinGap + cfg.MaxGap) / 2
	pace := max(time.Second/400, min(time.Second, span*time.Duration(cfg.Nodes)/time.Duration(len(plan))))
	c := &chaosCluster{
		cfg: cfg, out: out, ctx: ctx, hubDir: filepath.Join(base, "hub"), logPath: filepath.Join(base, "activity-executions.log"),
		pace: pace, peers: peers, events: make(chan memberEvent, 1024), done: make(chan struct{}), res: res,
	}
	for i, addr := range peers {
		c.members = append(c.members, &chaosMember{i: i, addr: addr})
	}
	fmt.Fprintf(out, "chaos: cluster of %d (%s), seed %d, %d kills, %d units (%d instances), partitions %d, %s, a start every %v per member\n",
		cfg.Nodes, strings.Join(peers, " "), cfg.Seed, cfg.Kills, cfg.Units, len(plan), cfg.Partitions,
		map[bool]string{true: "nosync", false: "sync"}[cfg.NoSync], pace.Round(time.Millisecond))
	err = c.run()
	c.stopAll()
	if err != nil {
		c.showLogs()
		showUnfinished(ctx, out, cfg, c.hubDir, plan)
		return res, err
	}
	if err := verifyChaos(ctx, cfg, c.hubDir, plan, res); err != nil {
		c.showLogs()
		return res, err
	}
	return res, res.tallyExecutions(c.logPath, plan)
}

// run starts the members, kills and restarts them, lets them finish and
// shuts them down.
func (c *chaosCluster) run() error {
	t0 := time.Now()
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			return err
		}
	}
	if err := c.waitFor(time.Now().Add(2*time.Minute), "every member ready", func() bool { return c.all(func(m *chaosMember) bool { return m.ready }) }); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "  cluster of %d ready after %v\n", len(c.members), time.Since(t0).Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(c.cfg.Seed, 0x6b696c6c))
	seeded := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	last := time.Now()
	for k := 0; k < c.cfg.Kills; k++ {
		gap, victim, down := seeded(c.cfg.MinGap, c.cfg.MaxGap), c.members[rng.IntN(len(c.members))], seeded(c.cfg.MinDown, c.cfg.MaxDown)
		if err := c.waitFor(last.Add(gap), "", nil); err != nil {
			return err
		}
		if err := c.killAndRestart(k, victim, down); err != nil {
			return err
		}
		last = c.kill.at
	}
	c.closeKill()
	c.lastProgress = time.Now()
	for done := func() bool { return c.all(func(m *chaosMember) bool { return m.allDone }) }; ; {
		err := c.waitFor(time.Now().Add(time.Second), "every member done", done)
		if err == nil {
			break
		}
		if !errors.Is(err, errWaitTimedOut) {
			for _, m := range c.members {
				if !m.allDone {
					err = fmt.Errorf("%w; member %d still waits for: %s", err, m.i+1, m.pending)
				}
			}
			return err
		}
		if time.Since(c.lastProgress) > chaosStallAfter {
			if err := c.unstall(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(c.out, "  every member finished its share %v after the start; shutting all down\n", time.Since(t0).Round(time.Millisecond))
	for _, m := range c.members {
		_ = m.stdin.Close() // the member shuts down at EOF
	}
	if err := c.waitFor(time.Now().Add(2*time.Minute), "every member exited", func() bool { return c.all(func(m *chaosMember) bool { return !m.up }) }); err != nil {
		return err
	}
	return nil
}

// killAndRestart kills victim with SIGKILL, restarts it after down and
// waits until it is ready again.
func (c *chaosCluster) killAndRestart(k int, victim *chaosMember, down time.Duration) error {
	c.closeKill()
	if !victim.up {
		return fmt.Errorf("kill %d: member %d is not running", k+1, victim.i+1)
	}
	owned, err := c.ownedBy(victim.addr)
	if err != nil {
		return err
	}
	victim.killed = true
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: SIGKILL member %d: %w", k+1, victim.i+1, err)
	}
	c.kill = &chaosKill{at: time.Now(), victim: victim.i, victimGen: victim.gen, owned: owned, claimed: map[int]bool{}}
	if err := c.waitFor(c.kill.at.Add(down), "", nil); err != nil {
		return err
	}
	if err := c.waitFor(time.Now().Add(time.Minute), "the killed member's exit", func() bool { return !victim.up }); err != nil {
		return err
	}
	c.res.Kills++
	if err := c.start(victim); err != nil {
		return err
	}
	if err := c.waitFor(time.Now().Add(2*time.Minute), fmt.Sprintf("member %d ready after its restart", victim.i+1), func() bool { return victim.ready }); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "  kill %d: member %d (owned %d partitions), down %v, ready %v after its restart\n",
		k+1, victim.i+1, len(owned), down.Round(time.Millisecond), time.Since(victim.startedAt).Round(time.Millisecond))
	return nil
}

// closeKill ends the figures of the last kill.
func (c *chaosCluster) closeKill() {
	c.pollClaims()
	c.kill = nil
}

// ownedBy reads the ownership records and returns the partitions owner
// holds, with their epochs.
func (c *chaosCluster) ownedBy(owner string) (map[int]uint64, error) {
	owned := map[int]uint64{}
	recs, err := filepath.Glob(filepath.Join(c.hubDir, "partition-*.owner"))
	if err != nil {
		return nil, fmt.Errorf("list ownership records: %w", err)
	}
	for _, path := range recs {
		p, rec, err := readOwner(path)
		if err != nil {
			return nil, err
		}
		if rec.Owner == owner {
			owned[p] = rec.Epoch
		}
	}
	return owned, nil
}

type chaosOwnerRecord struct {
	Epoch uint64 `json:"epoch"`
	Owner string `json:"owner"`
}

// readOwner reads a partition's ownership record (see
// persistence/ownership.go: replaced whole by rename, so never torn).
func readOwner(path string) (int, chaosOwnerRecord, error) {
	var rec chaosOwnerRecord
	p, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "partition-"), ".owner"))
	if err != nil {
		return 0, rec, fmt.Errorf("ownership record %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, rec, fmt.Errorf("read ownership record: %w", err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return 0, rec, fmt.Errorf("ownership record %s: %w", path, err)
	}
	return p, rec, nil
}

// pollClaims notes the partitions of the last kill claimed since.
func (c *chaosCluster) pollClaims() {
	k := c.kill
	if k == nil || len(k.claimed) == len(k.owned) {
		return
	}
	for p, epoch := range k.owned {
		if k.claimed[p] {
			continue
		}
		_, rec, err := readOwner(filepath.Join(c.hubDir, fmt.Sprintf("partition-%03d.owner", p)))
		if err != nil || rec.Epoch <= epoch {
			continue
		}
		k.claimed[p] = true
		if rec.Owner == c.members[k.victim].addr {
			c.res.Reclaimed++
		} else {
			c.res.FailedOver++
		}
	}
	if len(k.claimed) == len(k.owned) && len(k.owned) > 0 {
		d := time.Since(k.at)
		c.res.ClaimedSamples++
		c.res.KillToClaimedSum += d
		c.res.WorstKillToClaimed = max(c.res.WorstKillToClaimed, d)
	}
}

func (c *chaosCluster) all(f func(*chaosMember) bool) bool {
	for _, m := range c.members {
		if !f(m) {
			return false
		}
	}
	return true
}

// waitFor handles the members' events until cond holds (nil: until
// deadline) or deadline passes (zero: no deadline but the run's); what
// names cond in the error.
func (c *chaosCluster) waitFor(deadline time.Time, what string, cond func() bool) error {
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		if cond != nil && cond() {
			return nil
		}
		select {
		case e := <-c.events:
			if err := c.handle(e); err != nil {
				return err
			}
		case <-poll.C:
			c.pollClaims()
		case <-timeout:
			if cond == nil {
				return nil
			}
			return fmt.Errorf("chaos: waited for %s until %v: %w", what, deadline.Format(time.TimeOnly), errWaitTimedOut)
		case <-c.ctx.Done():
			return fmt.Errorf("chaos: waiting for %s: %w", cmpStr(what, "the next kill"), c.ctx.Err())
		}
	}
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// handle applies one event; a member that fails or exits on its own fails
// the run, but one the others expelled is restarted.
func (c *chaosCluster) handle(e memberEvent) error {
	m := c.members[e.member]
	if e.gen != m.gen {
		return nil // a line of a process that was killed
	}
	switch e.kind {
	case "ready":
		m.ready = true
		if m.gen > 1 {
			c.res.WorstRestartToReady = max(c.res.WorstRestartToReady, e.at.Sub(m.startedAt))
		}
	case "all-done":
		m.allDone = true
	case "expelled":
		m.expelled = true
	case "lost-wait":
		c.res.LostWaits++
		if len(c.res.LostWaitedFor) < 10 {
			c.res.LostWaitedFor = append(c.res.LostWaitedFor, e.text)
		}
	case "pending":
		if e.text != m.pending {
			c.lastProgress = e.at
		}
		m.pending = e.text
	case "exec":
		c.lastProgress = e.at
		if k := c.kill; k != nil && !k.progress && (e.member != k.victim || e.gen != k.victimGen) && e.at.After(k.at) {
			if _, ok := k.owned[e.partition]; ok {
				k.progress = true
				c.res.KillToProgressSamples++
				c.res.WorstKillToProgress = max(c.res.WorstKillToProgress, e.at.Sub(k.at))
			}
		}
	case "error":
		if !m.killed {
			return fmt.Errorf("member %d: %s", m.i+1, e.text)
		}
	case "exit":
		m.up = false
		switch {
		case m.killed:
		case m.expelled:
			c.res.Expulsions++
			fmt.Fprintf(c.out, "  member %d was dropped by the others and exited; restarting it\n", m.i+1)
			return c.start(m)
		case e.err != nil:
			return fmt.Errorf("member %d exited: %w", m.i+1, e.err)
		case !m.allDone:
			return fmt.Errorf("member %d exited before finishing its share", m.i+1)
		}
	}
	return nil
}

// start starts a new process for m.
func (c *chaosCluster) start(m *chaosMember) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start member %d: %w", m.i+1, err)
	}
	cmd := exec.CommandContext(c.ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+chaosMemberEnv,
		chaosChildDirEnv+"="+c.hubDir, chaosChildLogEnv+"="+c.logPath,
		chaosChildSeedEnv+"="+strconv.FormatUint(c.cfg.Seed, 10), chaosChildUnitsEnv+"="+strconv.Itoa(c.cfg.Units),
		chaosChildPartitionsEnv+"="+strconv.Itoa(c.cfg.Partitions), chaosChildNoSyncEnv+"="+map[bool]string{true: "1", false: "0"}[c.cfg.NoSync],
		chaosChildAddrEnv+"="+m.addr, chaosChildPeersEnv+"="+strings.Join(c.peers, ","),
		chaosChildMemberEnv+"="+fmt.Sprintf("%d/%d", m.i, len(c.members)), chaosChildPaceEnv+"="+c.pace.String())
	// The members' logs (protoactor is loud during a failover) go to a
	// file each, shown in part if the run fails.
	logf, err := os.OpenFile(c.memberLog(m), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start member %d: %w", m.i+1, err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "---- member %d, process %d, started %s ----\n", m.i+1, m.gen+1, time.Now().Format(time.StampMilli))
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("start member %d: %w", m.i+1, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("start member %d: %w", m.i+1, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start member %d: %w", m.i+1, err)
	}
	m.gen++
	m.cmd, m.stdin, m.startedAt = cmd, stdin, time.Now()
	m.up, m.ready, m.allDone, m.killed, m.expelled, m.pending = true, false, false, false, false, ""
	gen := m.gen
	send := func(e memberEvent) {
		e.member, e.gen, e.at = m.i, gen, time.Now()
		select {
		case c.events <- e:
		case <-c.done:
		}
	}
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "exec "):
				p, _ := strconv.Atoi(strings.TrimPrefix(line, "exec "))
				send(memberEvent{kind: "exec", partition: p})
			case strings.HasPrefix(line, "error "):
				send(memberEvent{kind: "error", text: strings.TrimPrefix(line, "error ")})
			case strings.HasPrefix(line, "lost-wait "):
				send(memberEvent{kind: "lost-wait", text: strings.TrimPrefix(line, "lost-wait ")})
			case strings.HasPrefix(line, "pending "):
				send(memberEvent{kind: "pending", text: strings.TrimPrefix(line, "pending ")})
			case line == "ready" || line == "all-done" || line == "expelled":
				send(memberEvent{kind: line})
			}
		}
		send(memberEvent{kind: "exit", err: cmd.Wait()})
	}()
	return nil
}

func (c *chaosCluster) memberLog(m *chaosMember) string {
	return filepath.Join(filepath.Dir(c.hubDir), fmt.Sprintf("member-%d.log", m.i+1))
}

// showLogs writes the end of every member's log to the run's output.
func (c *chaosCluster) showLogs() {
	for _, m := range c.members {
		data, err := os.ReadFile(c.memberLog(m))
		if err != nil {
			continue
		}
		fmt.Fprintf(c.out, "---- member %d's log (last 6 KB) ----\n%s\n", m.i+1, tail(string(data), 6<<10))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stopAll kills every member still running and waits for their readers.
func (c *chaosCluster) stopAll() {
	for _, m := range c.members {
		if m.up {
			_ = m.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	close(c.done)
	c.readers.Wait()
}

// chaosMemberMain is one member process of the cluster mode: it joins,
// prints "ready", drives its share of the plan, prints "all-done", and
// shuts down once its stdin is closed. Each activity execution prints
// "exec P" (P its partition; at most one line per partition every 20 ms).
func chaosMemberMain() int {
	fail := func(err error) int { fmt.Println("error " + err.Error()); return 1 }
	seed, _ := strconv.ParseUint(os.Getenv(chaosChildSeedEnv), 10, 64)
	units, _ := strconv.Atoi(os.Getenv(chaosChildUnitsEnv))
	partitions, _ := strconv.Atoi(os.Getenv(chaosChildPartitionsEnv))
	var me, size int
	if _, err := fmt.Sscanf(os.Getenv(chaosChildMemberEnv), "%d/%d", &me, &size); err != nil || size < 1 {
		return fail(fmt.Errorf("%s=%q: %v", chaosChildMemberEnv, os.Getenv(chaosChildMemberEnv), err))
	}
	pace, err := time.ParseDuration(os.Getenv(chaosChildPaceEnv))
	if err != nil || pace <= 0 {
		return fail(fmt.Errorf("%s=%q: %v", chaosChildPaceEnv, os.Getenv(chaosChildPaceEnv), err))
	}
	log, err := openExecLog(os.Getenv(chaosChildLogEnv), "child")
	if err != nil {
		return fail(err)
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println(s)
	}
	n := partitions
	if n == 0 {
		n = persistence.DefaultClusterPartitions
	}
	lastExec := make([]atomic.Int64, n)
	onExec := func(id string) {
		p := persistence.PartitionOf(id, n)
		now, before := time.Now().UnixNano(), lastExec[p].Load()
		if now-before >= int64(20*time.Millisecond) && lastExec[p].CompareAndSwap(before, now) {
			say("exec " + strconv.Itoa(p))
		}
	}
	addr := os.Getenv(chaosChildAddrEnv)
	rt, err := durable.Open(durable.Options{
		Dir: os.Getenv(chaosChildDirEnv), Partitions: partitions, NoSync: os.Getenv(chaosChildNoSyncEnv) == "1",
		Logger:  warnLogger().With("member", me+1, "cluster_addr", addr),
		Cluster: &cluster.Config{Addr: addr, Peers: strings.Split(os.Getenv(chaosChildPeersEnv), ",")},
	})
	if err != nil {
		return fail(fmt.Errorf("open member %d: %w", me+1, err))
	}
	if err := registerChaosObserved(log, nil, onExec)(rt); err != nil {
		return fail(fmt.Errorf("register on member %d: %w", me+1, err))
	}
	if err := rt.Start(); err != nil {
		return fail(fmt.Errorf("start member %d: %w", me+1, err))
	}
	for t0 := time.Now(); !rt.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Since(t0) > 2*time.Minute {
			return fail(fmt.Errorf("member %d not ready after 2 minutes", me+1))
		}
	}
	say("ready")
	var leaving atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Dropped by the others: exit, the driver restarts this member
		// (protoactor's members never let a dropped one back in).
		select {
		case <-rt.Expelled():
			if !leaving.Load() {
				say("expelled")
				os.Exit(3)
			}
		case <-stop:
		}
	}()
	var share []chaosInstance
	for j, in := range chaosPlan(seed, units) {
		if j%size == me {
			share = append(share, in)
		}
	}
	// pending: the waits for completion in flight; calls: every call in
	// flight (the waits among them).
	var pmu sync.Mutex
	pending := map[string]bool{}
	calls := map[*int]bool{}
	// While a partition moves, calls wait and are sent again by the
	// runtime; a node that does not see a majority answers Unavailable.
	retry := func(f func() error) error {
		key := new(int)
		pmu.Lock()
		calls[key] = true
		pmu.Unlock()
		defer func() {
			pmu.Lock()
			delete(calls, key)
			pmu.Unlock()
		}()
		for t0 := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			err := f()
			if !errors.Is(err, durable.ErrUnavailable) || time.Since(t0) > 2*time.Minute {
				return err
			}
		}
	}
	// Every 5 s, the waits still open (the driver shows the last of these
	// lines if the run stalls or times out).
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pmu.Lock()
			var ids []string
			for id := range pending {
				ids = append(ids, id)
			}
			others := len(calls) - len(ids)
			pmu.Unlock()
			slices.Sort(ids)
			callsNote := ""
			if others > 0 {
				callsNote = fmt.Sprintf(" (and %d other calls in flight)", others)
			}
			say(fmt.Sprintf("pending %d %s%s", len(ids), strings.Join(ids[:min(len(ids), 8)], " "), callsNote))
		}
	}()
	// A wait is renewed every chaosLostWait; if the instance has completed
	// meanwhile, the subscription missed its end: say so, and go on.
	c := rt.Client()
	wait := func(ctx context.Context, id string) (*durable.Status, error) {
		pmu.Lock()
		pending[id] = true
		pmu.Unlock()
		defer func() {
			pmu.Lock()
			delete(pending, id)
			pmu.Unlock()
		}()
		for {
			wctx, cancel := context.WithTimeout(ctx, chaosLostWait)
			st, err := c.WaitForCompletion(wctx, id)
			cancel()
			if err == nil || wctx.Err() == nil {
				return st, err
			}
			if st, err := c.Status(ctx, id); err == nil && st.RuntimeStatus.IsTerminal() {
				say("lost-wait " + id)
				return st, nil
			}
		}
	}
	if err := driveChaosPlan(context.Background(), c, share, pace, retry, true, nil, wait); err != nil {
		return fail(fmt.Errorf("member %d: %w", me+1, err))
	}
	say("all-done")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the driver closes it: all shut down together
	leaving.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		return fail(fmt.Errorf("shut down member %d: %w", me+1, err))
	}
	return 0
}

// printChaosCluster writes the cluster mode's figures of r.
func printChaosCluster(w io.Writer, r *ChaosResult) {
	fmt.Fprintf(w, "worst kill to progress: %v (from a SIGKILL to the first activity execution, on another process, in a partition the killed member owned; %d of %d kills had such work left)\n",
		r.WorstKillToProgress.Round(time.Millisecond), r.KillToProgressSamples, r.Kills)
	mean := time.Duration(0)
	if r.ClaimedSamples > 0 {
		mean = r.KillToClaimedSum / time.Duration(r.ClaimedSamples)
	}
	fmt.Fprintf(w, "failover:              the killed member's partitions claimed again after %v at worst, %v on average (%d kills); %d partitions moved to a survivor, %d were claimed back by the restarted member\n",
		r.WorstKillToClaimed.Round(time.Millisecond), mean.Round(time.Millisecond), r.ClaimedSamples, r.FailedOver, r.Reclaimed)
	if r.LostWaits > 0 {
		fmt.Fprintf(w, "LOST WAITS:            %d waits for completion still open %v after their instance had completed (the member then read its status and went on): %s\n",
			r.LostWaits, chaosLostWait, strings.Join(r.LostWaitedFor, ", "))
	}
	if r.Stalls > 0 {
		fmt.Fprintf(w, "STALLS:                %d: no progress for %v after the last kill, each unstuck by restarting every member in turn (liveness, not a wrong result); waiting: %s\n",
			r.Stalls, chaosStallAfter, strings.Join(r.Stalled, " | "))
	}
	fmt.Fprintf(w, "worst restart to ready: %v (a member's process start to its Ready: joined, every partition answering); %d members dropped by the others and restarted\n",
		r.WorstRestartToReady.Round(time.Millisecond), r.Expulsions)
}

// showUnfinished reopens the hub in this process after a failed run and
// writes which planned instances it finds not completed (what a stalled
// run left), before recovery has moved them on much.
func showUnfinished(ctx context.Context, out io.Writer, cfg ChaosConfig, hubDir string, plan []chaosInstance) {
	rt, err := startRuntime(Config{Partitions: cfg.Partitions, NoSync: cfg.NoSync, Logger: warnLogger()}, hubDir, registerChaos(nil, nil))
	if err != nil {
		fmt.Fprintf(out, "reopen to list the unfinished instances: %v\n", err)
		return
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	var left []string
	for _, in := range plan {
		st, err := rt.Client().Status(ctx, in.id)
		switch {
		case err != nil:
			left = append(left, fmt.Sprintf("%s (%v)", in.id, err))
		case st.RuntimeStatus != durable.StatusCompleted:
			left = append(left, fmt.Sprintf("%s (%s)", in.id, st.RuntimeStatus))
		}
	}
	fmt.Fprintf(out, "reopened after the failure: %d of %d planned instances not completed: %s\n", len(left), len(plan), strings.Join(left[:min(len(left), 20)], ", "))
}
