package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Peer programs -peer can run, each its own Go module so that the main
// module never depends on the engine it measures.
const (
	peerGoWorkflows = "go-workflows" // bench/peer
	peerDBOS        = "dbos"         // bench/peerdbos
)

// peerRunner runs one peer program, built once per run.
type peerRunner struct {
	name string
	bin  string
	args []string // flags of this peer only (DBOS: -pg)
}

func buildPeer(name, peerDir, workDir string, args []string) (*peerRunner, error) {
	bin := filepath.Join(workDir, "peer-bench-"+name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = peerDir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "building the %s peer program in %s...\n", name, peerDir)
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	return &peerRunner{name: name, bin: bin, args: args}, nil
}

// buildPeers builds the peer programs opts.Peers names.
func buildPeers(opts Options, workDir string) ([]*peerRunner, error) {
	var peers []*peerRunner
	for _, name := range opts.Peers {
		dir, args := opts.PeerDir, []string(nil)
		if name == peerDBOS {
			dir = opts.PeerDBOSDir
			if opts.PeerPG != "" {
				args = []string{"-pg", opts.PeerPG}
			}
		}
		p, err := buildPeer(name, dir, workDir, args)
		if err != nil {
			return nil, fmt.Errorf("build the %s peer program in %s: %w", name, dir, err)
		}
		peers = append(peers, p)
	}
	return peers, nil
}

// parsePeers checks -peers: a comma list of peer programs.
func parsePeers(list string) ([]string, error) {
	var names []string
	for _, name := range strings.Split(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case peerGoWorkflows, peerDBOS:
			names = append(names, name)
		case "":
		default:
			return nil, fmt.Errorf("-peers: unknown peer %q (want %s, %s)", name, peerGoWorkflows, peerDBOS)
		}
	}
	return names, nil
}

// run runs one workload on every backend of the peer and returns their results.
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
	cmd := exec.Command(p.bin, append(args, p.args...)...)
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
