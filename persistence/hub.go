// Package persistence is the Badger store of a durable task hub: one Badger
// database per partition, the key layout of every record family, the binary
// codecs of the records it owns, and a group committer that merges the
// concurrent writes of a partition into one transaction (one fsync).
//
// It knows keys, values and transactions, nothing about actors; history
// events and inbox messages are opaque bytes encoded by other packages.
// Besides Badger's goroutines it starts two per open partition: the
// committer, which leads the group commits of batches whose callers do not
// wait (Partition.CommitAsync), and the notifier, which calls their
// callbacks while later commits run. As configured, one more checks the
// free space (Options.MinFreeBytes), one syncs a NoSync partition
// periodically, and in cluster mode (OpenShared) one per claimed partition
// watches its ownership record.
// The fencing protocol of cluster mode, and what it assumes of the shared
// filesystem, is described at the top of ownership.go.
package persistence

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPartitions is the partition count of a new hub when
// Options.Partitions is 0.
const DefaultPartitions = 4

// maxPartitions bounds Options.Partitions: each partition is a Badger
// database with its own memtables, caches and goroutines.
const maxPartitions = 1024

// hubFormat is the "format" of hub.json this package writes and reads.
const hubFormat = 1

const hubFileName = "hub.json"

// Errors returned by this package; test with errors.Is.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked: a partition directory is locked by another process (or by
	// another open Hub in this process).
	ErrLocked = errors.New("directory locked by another process")
	// ErrPartitionMismatch: Options.Partitions differs from the partition
	// count recorded when the hub was created.
	ErrPartitionMismatch = errors.New("partition count mismatch")
	// ErrBatchTooLarge: one batch alone exceeds Badger's transaction limits;
	// nothing of it was written.
	ErrBatchTooLarge = errors.New("batch too large for one transaction")
	// ErrClosed: the hub (or partition) is closed.
	ErrClosed = errors.New("store closed")
	// ErrWriteFailed: the store could not write a transaction (an I/O
	// error, a full disk); nothing of it was written, and the same
	// batch may be committed again later.
	ErrWriteFailed = errors.New("store write failed")
	// ErrPartitionDown: the partition's store could not be opened (its
	// files are damaged, truncated or unreadable), so the partition serves
	// nothing until an operator repairs or restores its directory and
	// restarts the node. Retrying does not help; the other partitions of
	// the hub serve on. The error names the partition and its directory.
	ErrPartitionDown = errors.New("partition is down")
)

// PartitionFault is a partition of an open hub whose store could not be
// opened (see Open): it serves nothing, and every request for it fails with
// an error wrapping ErrPartitionDown.
type PartitionFault struct {
	// Index is the partition's number, Dir its directory.
	Index int
	Dir   string
	// Err is why it could not be opened.
	Err error
}

// Options configure Open and OpenShared.
type Options struct {
	// Dir is the hub directory, created if missing. "" keeps everything in
	// memory (for tests): nothing survives Close. OpenShared requires it.
	Dir string
	// Partitions is the number of partitions. 0 means the number recorded in
	// the hub, or for a new hub DefaultPartitions (Open) or
	// DefaultClusterPartitions (OpenShared). A non-zero value that
	// differs from the recorded one fails with ErrPartitionMismatch: the
	// count is fixed at creation because ids are hashed onto partitions.
	Partitions int
	// NoSync trades durability for latency. false (the default): Commit
	// returns only once the transaction is fsynced, so every committed batch
	// survives a power cut or OS crash (Badger SyncWrites). true: Commit
	// returns once the transaction is in the write-ahead log in the OS page
	// cache; committed batches survive a crash of the process, but the last
	// ones (whatever the OS had not yet written back) may be lost on a power
	// cut or OS crash. With group commit, NoSync is rarely worth it.
	// Each partition then syncs its log every NoSyncInterval by itself, so
	// that window is bounded (see syncLoop for what one sync covers).
	NoSync bool
	// NoSyncInterval (NoSync only; 0 means DefaultNoSyncInterval, 1s) is
	// how often each partition of a NoSync hub syncs its write-ahead log,
	// when it committed anything since the last sync: the commits a power
	// cut can lose are those of about the last interval. It costs one
	// fsync per interval per busy partition.
	NoSyncInterval time.Duration
	// CommitFault, for fault-injection tests only (nil otherwise), is
	// asked before each transaction commits: an error makes that
	// transaction fail as a failed disk write would (ErrWriteFailed),
	// writing nothing.
	CommitFault func(partition int) error
	// MinFreeBytes is the free space each partition on disk keeps in
	// reserve (0 means DefaultMinFreeBytes, 64 MiB; negative: none): while
	// its filesystem has less, its commits fail with ErrWriteFailed, and
	// they succeed again once space is back (checked every 250ms, and by
	// the commit leader before it writes past a quarter of the reserve
	// since the last check, or past the reserve itself). Badger
	// writes its logs through memory maps, and a write to a full
	// filesystem through one kills the process with SIGBUS: the reserve
	// keeps a node from reaching that.
	MinFreeBytes int64
	// Logger receives this package's logs and Badger's (Badger's Infof and
	// Debugf at Debug level, Warningf at Warn, Errorf at Error). nil means
	// slog.Default().
	Logger *slog.Logger

	// FenceGrace (OpenShared only; 0 means 500ms) is how long Claim waits
	// between writing a new ownership epoch and opening the partition's
	// store. It costs every Claim that long (a partition that moves is
	// unwritable for at least FenceGrace), except the re-claim of a
	// partition this hub released itself. It assumes that a commit an old
	// owner started after its last ownership check finishes within
	// FenceGrace; and, where the store's directory lock does not reach
	// across hosts, that an old owner also notices it was fenced and closes
	// its store within it (FenceCheckInterval, plus one read of the record,
	// plus the close). See ownership.go.
	FenceGrace time.Duration
	// FenceCheckInterval (OpenShared only; 0 means 250ms) is how often a
	// claimed partition re-reads its ownership record when no commit has
	// done so meanwhile, so that an idle partition learns it was fenced and
	// closes. It costs one small file read per interval per idle claimed
	// partition.
	FenceCheckInterval time.Duration
}

// Defaults of Options.FenceGrace and Options.FenceCheckInterval.
const (
	defaultFenceGrace         = 500 * time.Millisecond
	defaultFenceCheckInterval = 250 * time.Millisecond
)

// Hub is an open task hub: a fixed set of partitions, each a Badger database.
// A hub opened with Open holds every partition; one opened with OpenShared
// holds those it has claimed (Claim). Its methods are safe for concurrent
// use.
type Hub struct {
	dir        string
	n          int          // partition count
	parts      []*Partition // Open: every partition (nil: down); OpenShared: nil
	downMu     sync.Mutex
	down       []PartitionFault // the partitions that could not be opened (see Down)
	shared     *sharedHub       // OpenShared only
	log        *slog.Logger
	closed     atomic.Bool
	closeOnce  sync.Once
	closeError error
}

type hubFile struct {
	Format     int `json:"format"`
	Partitions int `json:"partitions"`
}

// Open opens (or creates) the hub in opts.Dir, or an in-memory hub when
// opts.Dir is "". Errors name the file or directory at fault; a partition
// directory held by another process fails with ErrLocked. On error nothing
// stays open.
//
// A partition whose store cannot be opened for another reason (garbage or
// truncated files) does not fail the hub: it is logged at Error and
// recorded as down (Down, DownError), Partition returns nil for it, and
// the other partitions serve. Only when every partition is down does Open
// fail, with every partition's error: a hub that can serve nothing is
// better refused at start than run.
func Open(opts Options) (*Hub, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Partitions < 0 || opts.Partitions > maxPartitions {
		return nil, fmt.Errorf("open hub: Partitions = %d, want 0..%d", opts.Partitions, maxPartitions)
	}
	if opts.NoSyncInterval < 0 {
		return nil, fmt.Errorf("open hub: NoSyncInterval = %v, want >= 0", opts.NoSyncInterval)
	}
	n := opts.Partitions
	if opts.Dir != "" {
		var err error
		n, err = prepareHubDir(opts.Dir, opts.Partitions, DefaultPartitions, false, log)
		if err != nil {
			return nil, err
		}
	} else if n == 0 {
		n = DefaultPartitions
	}

	h := &Hub{dir: opts.Dir, n: n, log: log, parts: make([]*Partition, 0, n)}
	for i := 0; i < n; i++ {
		dir := ""
		if opts.Dir != "" {
			dir = filepath.Join(opts.Dir, partitionDirName(i))
		}
		p, err := openPartition(i, dir, opts.NoSync, syncPeriod(opts), minFree(opts), log)
		if err == nil {
			p.fault = opts.CommitFault
		}
		if err != nil && (errors.Is(err, ErrLocked) || dir == "") {
			// Another process serves this hub (or memory failed): not a
			// damaged partition, and nothing of the hub should run here.
			h.closeOpened()
			return nil, err
		}
		if err != nil {
			log.Error("partition is down: its store cannot be opened; the other partitions serve",
				"partition", i, "dir", dir, "err", err)
			h.down = append(h.down, PartitionFault{Index: i, Dir: dir, Err: err})
		}
		h.parts = append(h.parts, p) // nil when down
	}
	if len(h.down) == n {
		errs := make([]error, 0, n)
		for _, f := range h.down {
			errs = append(errs, f.Err)
		}
		return nil, fmt.Errorf("open hub %s: every partition is down: %w", opts.Dir, errors.Join(errs...))
	}
	log.Debug("hub opened", "dir", opts.Dir, "partitions", n, "sync", !opts.NoSync)
	return h, nil
}

// closeOpened closes the partitions Open opened so far.
func (h *Hub) closeOpened() {
	for _, q := range h.parts {
		if q == nil {
			continue
		}
		if cerr := q.close(); cerr != nil {
			h.log.Error("close partition after failed open", "partition", q.index, "err", cerr)
		}
	}
}

// Down returns the partitions whose store could not be opened, in
// partition order (none for a healthy hub): for a hub opened with Open,
// those found at Open; for OpenShared, those whose last Claim here failed
// to open the store (until a Claim succeeds or Release is called).
func (h *Hub) Down() []PartitionFault {
	h.downMu.Lock()
	defer h.downMu.Unlock()
	return append([]PartitionFault(nil), h.down...)
}

// setDown records (err != nil) or clears partition i as down.
func (h *Hub) setDown(i int, dir string, err error) {
	h.downMu.Lock()
	defer h.downMu.Unlock()
	kept := h.down[:0]
	for _, f := range h.down {
		if f.Index != i {
			kept = append(kept, f)
		}
	}
	h.down = kept
	if err != nil {
		h.down = append(h.down, PartitionFault{Index: i, Dir: dir, Err: err})
		slices.SortFunc(h.down, func(a, b PartitionFault) int { return a.Index - b.Index })
	}
}

// DownError returns, when partition i is down, the error every request for
// it gets: it wraps ErrPartitionDown and names the partition, its
// directory and why it could not be opened. It returns nil for a partition
// that is not down.
func (h *Hub) DownError(i int) error {
	h.downMu.Lock()
	defer h.downMu.Unlock()
	for _, f := range h.down {
		if f.Index == i {
			return fmt.Errorf("%w: partition %d (repair or restore %s, then restart the node): %v",
				ErrPartitionDown, f.Index, f.Dir, f.Err)
		}
	}
	return nil
}

// minFree is the free-space reserve of a hub opened with opts.
func minFree(opts Options) int64 {
	switch {
	case opts.MinFreeBytes < 0:
		return 0
	case opts.MinFreeBytes == 0:
		return DefaultMinFreeBytes
	}
	return opts.MinFreeBytes
}

func partitionDirName(i int) string { return fmt.Sprintf("partition-%03d", i) }

// prepareHubDir creates dir and its hub.json if needed and returns the
// partition count to use: want, or the recorded count, or def for a new hub
// when want is 0. exclusive creates hub.json only if no one else did
// meanwhile (for nodes that may create one shared hub at once).
func prepareHubDir(dir string, want, def int, exclusive bool, log *slog.Logger) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create hub directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, hubFileName)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var hf hubFile
		if err := json.Unmarshal(data, &hf); err != nil {
			return 0, fmt.Errorf("read hub file %s: corrupt: %w", path, err)
		}
		if hf.Format != hubFormat {
			return 0, fmt.Errorf("read hub file %s: unsupported format %d (want %d)", path, hf.Format, hubFormat)
		}
		if hf.Partitions < 1 || hf.Partitions > maxPartitions {
			return 0, fmt.Errorf("read hub file %s: corrupt: partitions = %d", path, hf.Partitions)
		}
		if want != 0 && want != hf.Partitions {
			return 0, fmt.Errorf("open hub %s: %w: options ask for %d partitions, the hub was created with %d",
				dir, ErrPartitionMismatch, want, hf.Partitions)
		}
		return hf.Partitions, nil
	case errors.Is(err, fs.ErrNotExist):
		// A new hub. Partition directories without hub.json mean someone
		// removed it: refuse rather than guess the count.
		if ents, rerr := os.ReadDir(dir); rerr == nil {
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "partition-") {
					return 0, fmt.Errorf("open hub %s: %s is missing but %s exists", dir, path, filepath.Join(dir, e.Name()))
				}
			}
		}
		n := want
		if n == 0 {
			n = def
		}
		created, err := writeHubFile(dir, path, hubFile{Format: hubFormat, Partitions: n}, exclusive, log)
		if err != nil {
			return 0, err
		}
		if !created {
			// Another node created it first: use what it recorded.
			return prepareHubDir(dir, want, def, false, log)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("read hub file %s: %w", path, err)
	}
}

// writeHubFile writes hub.json atomically (see writeFileAtomic). With
// exclusive, it reports created == false, writing nothing, if hub.json
// already exists.
func writeHubFile(dir, path string, hf hubFile, exclusive bool, log *slog.Logger) (created bool, err error) {
	data, err := json.Marshal(hf)
	if err != nil {
		return false, fmt.Errorf("write hub file %s: %w", path, err)
	}
	data = append(data, '\n')
	return writeFileAtomic(dir, path, hubFileName, data, exclusive, log)
}

// writeFileAtomic replaces (or, with exclusive, creates) the file path in
// dir with data, atomically: a temp file in dir is written and fsynced, then
// renamed over path (exclusive: hard-linked to path, which fails if path
// exists), then dir is fsynced so that the rename itself survives a power
// cut. A reader of path sees the old content or the new one, whole. base
// names the temp file. created is false only when exclusive found path
// existing.
func writeFileAtomic(dir, path, base string, data []byte, exclusive bool, log *slog.Logger) (created bool, err error) {
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a rename, a no-op
	fail := func(err error) (bool, error) {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if exclusive {
		err := os.Link(tmpName, path)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrExist):
			return false, nil
		default:
			// No hard links on this filesystem: fall back to a rename,
			// which cannot tell whether someone created path meanwhile.
			log.Warn("cannot create a file exclusively (no hard links?); replacing it instead",
				"file", path, "err", err)
			exclusive = false
		}
	}
	if !exclusive {
		if err := os.Rename(tmpName, path); err != nil {
			return false, fmt.Errorf("write %s: %w", path, err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return false, fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return true, nil
}

// Partitions returns the number of partitions, fixed at hub creation.
func (h *Hub) Partitions() int { return h.n }

// PartitionOf returns the partition that owns id: FNV-1a 64 of the id's
// bytes, modulo the partition count. This mapping is part of the on-disk
// format and must never change.
func (h *Hub) PartitionOf(id string) int {
	return PartitionOf(id, h.n)
}

// PartitionOf returns the partition of n that owns id (see Hub.PartitionOf).
func PartitionOf(id string, n int) int {
	f := fnv.New64a()
	f.Write([]byte(id))
	return int(f.Sum64() % uint64(n))
}

// Partition returns partition i. It panics if i is not in [0, Partitions()).
// A hub opened with OpenShared returns nil for a partition it does not hold
// (see Held), one opened with Open for a partition that is down (see
// DownError).
func (h *Hub) Partition(i int) *Partition {
	if h.shared != nil {
		return h.shared.held(i)
	}
	return h.parts[i]
}

// Close closes every partition the hub holds. Commits already queued are
// completed first; later Commits and reads fail with ErrClosed. A Claim in
// progress fails with ErrClosed. Calling Close again returns the first
// call's result.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		parts := h.parts
		if h.shared != nil {
			parts = h.shared.closeAll()
		}
		var errs []error
		for _, p := range parts {
			if p == nil {
				continue // down
			}
			if err := p.close(); err != nil {
				errs = append(errs, err)
			}
		}
		h.closeError = errors.Join(errs...)
		h.log.Debug("hub closed", "dir", h.dir)
	})
	return h.closeError
}
