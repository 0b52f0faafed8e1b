//go:build !windows && !plan9 && !js && !wasip1 && !aix

package persistence

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// removeEmptyLogFiles removes the zero-length memtable (.mem) and value log
// (.vlog) files of the Badger directory dir. Badger creates such a file
// and only then sizes it and writes its header; a process killed in
// between leaves it empty, and Badger v4.9.6 then refuses to open the
// directory ("while opening memtables ... Create a new file", badger issue
// #2207). An empty file holds no entry, so removing it loses nothing.
//
// It runs under Badger's own lock (an exclusive flock on the directory), so
// it never touches a directory that a live process is using: if the lock is
// taken it does nothing and badger.Open reports the lock.
func removeEmptyLogFiles(dir string, log *slog.Logger) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a new partition
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil
	}
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN) // closing d would release it too
	entries, err := d.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty %s left by a crash: %w", path, err)
		}
		log.Warn("removed an empty store file left by a crash", "file", path)
	}
	return nil
}
