package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one workload run on one system. Its JSON form is the harness's
// output format; the peer program in bench/peer prints the same objects.
type Result struct {
	Workload    string `json:"workload"`
	System      string `json:"system"`
	Mode        string `json:"mode"`
	Durability  string `json:"durability"`
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency,omitempty"`
	// Rate is W1's open-loop start rate per second (-rate), if set.
	Rate       float64 `json:"rate,omitempty"`
	Partitions int     `json:"partitions,omitempty"`

	// PerSecond is the workload's throughput figure, in Unit.
	PerSecond float64 `json:"per_second"`
	Unit      string  `json:"unit"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// LatencyOf says what P50Ms and P99Ms are percentiles of.
	LatencyOf string  `json:"latency_of"`
	WallMs    float64 `json:"wall_ms"`
	// CPUMs is the CPU time (user + system, all threads) the process used
	// during the timed phase; CPUUsPerOp divides it by the operations the
	// per_second figure counts. Steadier than wall time on a shared machine.
	CPUMs      float64 `json:"cpu_ms,omitempty"`
	CPUUsPerOp float64 `json:"cpu_us_per_op,omitempty"`
	// CommitsPerTransaction is how many commits (turns, starts, entity
	// batches) group commit merged per store transaction (per fsync in
	// sync mode) during the timed phase.
	CommitsPerTransaction float64 `json:"commits_per_transaction,omitempty"`
	// Verified is true only when every timed output was checked and right.
	Verified bool   `json:"verified"`
	Wrong    int    `json:"wrong"`
	Error    string `json:"error,omitempty"`
	Note     string `json:"note,omitempty"`

	// Workload-specific figures.
	Activities                  int      `json:"activities,omitempty"`
	TimePerStepMs               float64  `json:"time_per_step_ms,omitempty"`
	FsyncMs                     float64  `json:"fsync_ms"`
	CompletedBeforeKill         *int     `json:"completed_before_kill,omitempty"`
	RecoveryOpenMs              *float64 `json:"recovery_open_ms,omitempty"`
	ActivitySchedulings         *int     `json:"activity_schedulings,omitempty"`
	ActivityExecutions          *int     `json:"activity_executions,omitempty"`
	DuplicateActivityExecutions *int     `json:"duplicate_activity_executions,omitempty"`
	// DuplicatesByProcess splits W4's duplicates: activities that ran in
	// the killed child and again after the restart (expected: at least
	// once), and extra runs within one process (not expected).
	DuplicatesByProcess map[string]int `json:"duplicates_by_process,omitempty"`

	// W5 (waiting). WaitingBytesPerInstance is the headline figure: the
	// growth of VmRSS from before the instances were started to when all
	// of them wait with their actors passivated, divided by n
	// (WaitingBytesMeasure says so in words). WaitingHeapBytesPerInstance
	// is the same for the Go heap in use. The samples are taken after a GC
	// and debug.FreeOSMemory.
	IdleTimeoutMs               float64       `json:"idle_timeout_ms,omitempty"`
	StartedPerSecond            float64       `json:"started_per_second,omitempty"`
	WaitingBytesPerInstance     *float64      `json:"waiting_bytes_per_instance,omitempty"`
	WaitingHeapBytesPerInstance *float64      `json:"waiting_heap_bytes_per_instance,omitempty"`
	WaitingBytesMeasure         string        `json:"waiting_bytes_measure,omitempty"`
	MemoryBaseline              *MemorySample `json:"memory_baseline,omitempty"`
	MemoryAllWaiting            *MemorySample `json:"memory_all_waiting,omitempty"`
	MemoryPassivated            *MemorySample `json:"memory_passivated,omitempty"`
	MemoryCompleted             *MemorySample `json:"memory_completed,omitempty"`

	// W6 (entities): how many Counter entities the signals were spread
	// over, and how many final counts were right only when read again
	// after SignalEntity had returned (LateCounts: not applied yet at
	// return, which SignalEntity's contract rules out).
	Entities   int  `json:"entities,omitempty"`
	LateCounts *int `json:"late_counts,omitempty"`

	// Cluster rows (-cluster): ClusterNodes runtimes in this process formed
	// one cluster; ClusterReadyMs is the time from starting them until
	// every one was Ready (untimed); SingleNodeRatio is this row's
	// PerSecond divided by the single-node row's, same workload, same run.
	ClusterNodes    int     `json:"cluster_nodes,omitempty"`
	ClusterReadyMs  float64 `json:"cluster_ready_ms,omitempty"`
	SingleNodeRatio float64 `json:"single_node_ratio,omitempty"`

	// PeerRatios is durable's PerSecond divided by each peer's, for the
	// same workload and mode (only on durable's results, with -peer).
	PeerRatios map[string]float64 `json:"peer_ratios,omitempty"`

	Machine *Machine `json:"machine,omitempty"`
	At      string   `json:"at"`
}

// Machine describes where the figures were taken.
type Machine struct {
	Cores      int     `json:"cores"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoVersion  string  `json:"go_version"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	FsyncP50Ms float64 `json:"fsync_p50_ms"`
	FsyncP99Ms float64 `json:"fsync_p99_ms"`
	FsyncDir   string  `json:"fsync_dir"`
	FsyncCount int     `json:"fsync_count"`
}

func newMachine() *Machine {
	return &Machine{
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// measureFsync writes 4 KiB and syncs it count times in dir, the floor of
// any durable commit on that disk, and returns the median and p99 in ms.
func measureFsync(dir string, count int) (p50, p99 float64, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i)
	}
	lat := make([]time.Duration, 0, count)
	for i := 0; i < count; i++ {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	return percentileMs(lat, 50), percentileMs(lat, 99), nil
}

// percentileMs returns the p-th percentile (nearest rank) of d in ms.
func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	rank = max(0, min(rank, len(s)-1))
	return ms(s[rank])
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// extra returns the workload-specific figures of r as a short string.
func (r *Result) extra() string {
	var parts []string
	if r.Activities > 0 {
		parts = append(parts, fmt.Sprintf("activities=%d", r.Activities))
	}
	if r.CommitsPerTransaction > 0 {
		parts = append(parts, fmt.Sprintf("commits/txn=%.1f", r.CommitsPerTransaction))
	}
	if r.TimePerStepMs > 0 {
		parts = append(parts, fmt.Sprintf("step=%.3fms fsync=%.3fms", r.TimePerStepMs, r.FsyncMs))
	}
	if r.CompletedBeforeKill != nil {
		parts = append(parts, fmt.Sprintf("done-before-kill=%d", *r.CompletedBeforeKill))
	}
	if r.RecoveryOpenMs != nil {
		parts = append(parts, fmt.Sprintf("open+start=%.0fms", *r.RecoveryOpenMs))
	}
	if r.DuplicateActivityExecutions != nil {
		parts = append(parts, fmt.Sprintf("dup-activity-runs=%d/%d", *r.DuplicateActivityExecutions, *r.ActivitySchedulings))
		if v, ok := r.DuplicatesByProcess["re-run after the restart although committed at the kill"]; ok {
			parts = append(parts, fmt.Sprintf("(re-runs of results committed before the kill: %d)", v))
		}
		if d := r.DuplicatesByProcess; d["within the killed child"]+d["within the restarted process"] > 0 {
			parts = append(parts, fmt.Sprintf("(of which within one process: %d child, %d restart)", d["within the killed child"], d["within the restarted process"]))
		}
	}
	if r.WaitingBytesPerInstance != nil {
		parts = append(parts, fmt.Sprintf("waiting: %.0f B/instance RSS, %.0f B/instance Go heap (idle timeout %.0fms; started %.0f/s)",
			*r.WaitingBytesPerInstance, *r.WaitingHeapBytesPerInstance, r.IdleTimeoutMs, r.StartedPerSecond))
	}
	if r.Entities > 0 {
		parts = append(parts, fmt.Sprintf("entities=%d", r.Entities))
	}
	if r.LateCounts != nil && *r.LateCounts > 0 {
		parts = append(parts, fmt.Sprintf("counts-late=%d", *r.LateCounts))
	}
	if r.ClusterNodes > 0 {
		parts = append(parts, fmt.Sprintf("partitions=%d ready-after=%.0fms", r.Partitions, r.ClusterReadyMs))
	}
	if r.SingleNodeRatio > 0 {
		parts = append(parts, fmt.Sprintf("x%.2f vs single node", r.SingleNodeRatio))
	}
	for _, peer := range sortedKeys(r.PeerRatios) {
		parts = append(parts, fmt.Sprintf("x%.2f vs %s", r.PeerRatios[peer], peer))
	}
	if r.Error != "" {
		parts = append(parts, "ERROR: "+r.Error)
	}
	if r.Note != "" {
		parts = append(parts, "note: "+r.Note)
	}
	return strings.Join(parts, "  ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func printMachine(w io.Writer, m *Machine) {
	fmt.Fprintf(w, "machine: %d cores, GOMAXPROCS=%d, %s %s/%s; fsync of 4 KiB in %s: p50 %.3f ms, p99 %.3f ms (%d syncs)\n",
		m.Cores, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, m.FsyncDir, m.FsyncP50Ms, m.FsyncP99Ms, m.FsyncCount)
}

func printTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tsystem\tmode\tn\tper second\tunit\tp50 ms\tp99 ms\twall ms\tcpu us/op\tverified\tnotes")
	for _, r := range results {
		cpu := "-" // the peer's process does not report it
		if r.CPUUsPerOp > 0 {
			cpu = fmt.Sprintf("%.1f", r.CPUUsPerOp)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\t%.2f\t%.2f\t%.0f\t%s\t%v\t%s\n",
			r.Workload, r.System, r.Mode, r.N, r.PerSecond, r.Unit, r.P50Ms, r.P99Ms, r.WallMs, cpu, r.Verified, r.extra())
	}
	tw.Flush()
}

// writeJSON appends one JSON object per result (JSON Lines) to path.
func writeJSON(path string, results []*Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
