package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// peerRunner runs the peer program (bench/peer, its own Go module so the
// main module never depends on go-workflows), built once per run.
type peerRunner struct{ bin string }

func buildPeer(peerDir, workDir string) (*peerRunner, error) {
	bin := filepath.Join(workDir, "peer-bench")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = peerDir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "building the peer program in %s...\n", peerDir)
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	return &peerRunner{bin: bin}, nil
}

// run runs one workload on every peer backend and returns their results.
func (p *peerRunner) run(workload string, opts Options, dir string) ([]*Result, error) {
	out, err := os.CreateTemp(dir, "peer-*.jsonl")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	args := []string{
		"-w", workload, "-n", strconv.Itoa(opts.N), "-c", strconv.Itoa(opts.Concurrency),
		"-mode", opts.Mode, "-dir", dir, "-json", out.Name(), "-fanout", strconv.Itoa(opts.FanOut),
		"-timeout", opts.Timeout.String(), "-quiet",
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	runErr := cmd.Run()
	results, err := readResults(out.Name())
	if err != nil {
		return results, err
	}
	if runErr != nil && len(results) == 0 {
		return nil, runErr
	}
	return results, nil
}

func readResults(path string) ([]*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var results []*Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return results, fmt.Errorf("peer output: %w", err)
		}
		results = append(results, &r)
	}
	return results, sc.Err()
}
