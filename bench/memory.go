package main

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemorySample is the process's memory at one point, after a full GC and
// debug.FreeOSMemory (so that freed heap is returned to the OS and does
// not count as resident).
type MemorySample struct {
	// VmRSS is the resident set (/proc/self/status): RssAnon + RssFile +
	// RssShmem. 0 where /proc is not available.
	VmRSS int64 `json:"vm_rss_bytes"`
	// RssAnon is anonymous resident memory: the Go heap, stacks, and
	// anything else the process allocated.
	RssAnon int64 `json:"rss_anon_bytes"`
	// RssFile is resident file-backed memory: the binary and the store's
	// memory-mapped files (Badger's tables and value log).
	RssFile int64 `json:"rss_file_bytes"`
	// HeapInuse, StackInuse: runtime.MemStats.
	HeapInuse  int64 `json:"heap_inuse_bytes"`
	StackInuse int64 `json:"stack_inuse_bytes"`
	// GoMapped is runtime.MemStats.Sys − HeapReleased: memory the Go
	// runtime holds from the OS.
	GoMapped   int64 `json:"go_mapped_bytes"`
	Goroutines int   `json:"goroutines"`
}

// sampleMemory collects garbage, returns freed memory to the OS, and
// reads the process's memory.
func sampleMemory() *MemorySample {
	runtime.GC()
	debug.FreeOSMemory() // runs another GC, then returns free pages to the OS
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &MemorySample{
		HeapInuse:  int64(ms.HeapInuse),
		StackInuse: int64(ms.StackInuse),
		GoMapped:   int64(ms.Sys - ms.HeapReleased),
		Goroutines: runtime.NumGoroutine(),
	}
	s.VmRSS, s.RssAnon, s.RssFile = procStatusRSS()
	return s
}

// procStatusRSS reads VmRSS, RssAnon and RssFile (in bytes) from
// /proc/self/status; zeros if it cannot.
func procStatusRSS() (rss, anon, file int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val) // "12345 kB"
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			rss = kb << 10
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return rss, anon, file
}

// perInstance is (after − before) / n for one field, in bytes.
func perInstance(before, after int64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return round(float64(after-before)/float64(n), 1)
}
