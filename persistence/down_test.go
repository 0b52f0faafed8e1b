package persistence

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A partition whose MANIFEST is garbage does not fail Open: it is down
// (Down, DownError naming its directory; Partition returns nil), the others
// open and Close closes them. With every partition damaged Open fails.
func TestADamagedPartitionIsDownAndTheOthersOpen(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(Options{Dir: dir, Partitions: 3, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	partDir := filepath.Join(dir, partitionDirName(2))
	if err := os.WriteFile(filepath.Join(partDir, "MANIFEST"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err = Open(Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	down := h.Down()
	if len(down) != 1 || down[0].Index != 2 || down[0].Dir != partDir || down[0].Err == nil {
		t.Fatalf("down %+v", down)
	}
	if err := h.DownError(2); !errors.Is(err, ErrPartitionDown) || !strings.Contains(err.Error(), partDir) {
		t.Fatalf("DownError(2) = %v", err)
	}
	if h.DownError(0) != nil || h.Partition(2) != nil || h.Partition(0) == nil || h.Partition(1) == nil {
		t.Fatal("healthy partitions reported down, or the down one returned")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ {
		if err := os.WriteFile(filepath.Join(dir, partitionDirName(i), "MANIFEST"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(Options{Dir: dir, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "every partition is down") ||
		!strings.Contains(err.Error(), filepath.Join(dir, partitionDirName(0))) {
		t.Fatalf("open with every partition damaged: %v", err)
	}
}
