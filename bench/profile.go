package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// timedProfile writes a CPU profile of each timed phase (-cpuprofile-timed),
// so that a profile shows the work that is measured, not the setup (for W5,
// starting the instances and waiting for them to passivate) or the checks.
var timedProfile profileOfSpans

type profileOfSpans struct {
	path    string // "" when off
	n       int    // phases profiled so far
	running *os.File
}

func (p *profileOfSpans) start() {
	if p.path == "" || p.running != nil {
		return
	}
	p.n++
	path := p.path
	if p.n > 1 {
		path = fmt.Sprintf("%s.%d", p.path, p.n)
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
		if err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: timed cpu profile:", err)
		return
	}
	p.running = f
}

func (p *profileOfSpans) stop() {
	if p.running == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := p.running.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: timed cpu profile:", err)
	}
	p.running = nil
}
