//go:build linux

package durable_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// smallFilesystem mounts a tmpfs of sizeMiB at a temporary directory, or
// skips, with the reason, where the machine does not let this process
// mount (not root), as the issue asks. As root a failed mount is a broken
// machine, and under CI it fails the test.
func smallFilesystem(t *testing.T, sizeMiB int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", sizeMiB), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a small tmpfs for a real full disk (needs root): %v: %s", err, out)
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestAFullDiskRefusesWritesAndTheNodeCarriesOnWhenSpaceIsBack fills a
// real (small tmpfs) filesystem with instances: once its free space is
// below Options.MinFreeBytes, starts fail with ErrUnavailable, the process
// lives on (a write through Badger's memory maps into a full filesystem
// would kill it with SIGBUS), and once space is freed the node writes
// again by itself and every acknowledged instance completes.
func TestAFullDiskRefusesWritesAndTheNodeCarriesOnWhenSpaceIsBack(t *testing.T) {
	fs := smallFilesystem(t, 160)
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, make([]byte, 48<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := durable.Open(durable.Options{Dir: filepath.Join(fs, "hub"), Partitions: 1, MinFreeBytes: 40 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close() // before the unmount (cleanups run after deferred calls)
	must(rt.RegisterOrchestrator("Keep", func(ctx *orchestration.Context) (any, error) {
		var s string
		if err := ctx.Input(&s); err != nil {
			return nil, err
		}
		return len(s), nil
	}))
	must(rt.Start())
	ctx := waitCtx(t)
	c := rt.Client()
	input := strings.Repeat("x", 200<<10)
	var acked []string
	refused := false
	for i := 0; i < 2000 && !refused; i++ {
		id := fmt.Sprintf("keep-%d", i)
		_, err := c.Start(ctx, "Keep", input, durable.WithInstanceID(id))
		switch {
		case err == nil:
			acked = append(acked, id)
		case errors.Is(err, durable.ErrUnavailable):
			refused = true
			t.Logf("start %d refused: %v", i, err)
		default:
			t.Fatalf("start %s: %v", id, err)
		}
	}
	if !refused {
		t.Fatal("2000 starts of 200 KiB fit on a 160 MiB filesystem")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The node carries on by itself: a start succeeds within a few checks.
	for {
		_, err := c.Start(context.Background(), "Keep", "after", durable.WithInstanceID("after"))
		if err == nil {
			break
		}
		if !errors.Is(err, durable.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("start once space is back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range append(acked, "after") {
		st, err := c.WaitForCompletion(ctx, id)
		if err != nil || st.RuntimeStatus != durable.StatusCompleted {
			t.Fatalf("%s: %+v %v", id, st, err)
		}
	}
	t.Logf("%d starts acknowledged before the disk was full; all completed once space was back", len(acked))
}
