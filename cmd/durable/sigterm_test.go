package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/httpapi"
)

// buildDurable builds this command into a temporary directory.
func buildDurable(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "durable")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProcess is a `durable serve` child process on 127.0.0.1.
type serveProcess struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

var listeningURL = regexp.MustCompile(`msg="durable node listening" url=(http://127\.0\.0\.1:\d+)`)

func startServe(t *testing.T, bin, dir string) *serveProcess {
	t.Helper()
	p := &serveProcess{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "info")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listeningURL.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
	select {
	case p.url = <-found:
	case err := <-p.done:
		t.Fatalf("serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen in 30s:\n%s", p.log())
	}
	return p
}

func (p *serveProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// post sends a request without retrying; err is a transport error.
func post(url, body string) (int, http.Header, []byte, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// TestSIGTERMStopsServeGracefullyAndARestartFinishesEverything sends
// SIGTERM to a real `durable serve` while clients keep starting fan-outs.
// Every request is answered 202 (acknowledged), 503 with Retry-After, or
// not at all (the listener is closed: connection refused); never 500. The
// process exits 0 within the shutdown bound, and a restart on the same
// directory finishes every acknowledged instance with the right output.
func TestSIGTERMStopsServeGracefullyAndARestartFinishesEverything(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" { // under CI it always runs
		t.Skip("builds and runs the command (-short)")
	}
	bin := buildDurable(t)
	dir := t.TempDir()
	p := startServe(t, bin, dir)

	const n = 300 // FanOutFanIn n: sum of 2i for i in 1..n
	var (
		mu        sync.Mutex
		acked     []string
		ambiguous []string // the connection broke: acknowledged or not
		bad       []string
		wg        sync.WaitGroup
	)
	stopClients := make(chan struct{})
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopClients:
					return
				default:
				}
				id := fmt.Sprintf("fan-%d-%d", w, i)
				code, h, body, err := post(p.url+httpapi.WebhookBase+"/orchestrators/FanOutFanIn/"+id, fmt.Sprint(n))
				mu.Lock()
				switch {
				case err != nil:
					ambiguous = append(ambiguous, id)
					mu.Unlock()
					if errors.Is(err, syscall.ECONNREFUSED) {
						return // the listener is closed
					}
					continue
				case code == http.StatusAccepted:
					acked = append(acked, id)
				case code == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
				default:
					bad = append(bad, fmt.Sprintf("start %s: %d %s", id, code, body))
				}
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d starts acknowledged in 30s:\n%s", k, p.log())
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, p.log())
		}
	case <-time.After(shutdownTimeout + 15*time.Second):
		t.Fatalf("serve still running %v after SIGTERM:\n%s", shutdownTimeout+15*time.Second, p.log())
	}
	close(stopClients)
	wg.Wait()
	if !strings.Contains(p.log(), "msg=stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.log())
	}
	if len(bad) > 0 {
		t.Fatalf("answers during shutdown:\n%s", strings.Join(bad, "\n"))
	}

	q := startServe(t, bin, dir)
	defer func() {
		_ = q.cmd.Process.Signal(syscall.SIGTERM)
		<-q.done
	}()
	want := fmt.Sprint(n * (n + 1))
	check := func(id string, mustExist bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(q.url + httpapi.WebhookBase + "/instances/" + id)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound && !mustExist {
				return
			}
			var st struct {
				RuntimeStatus string          `json:"runtimeStatus"`
				Output        json.RawMessage `json:"output"`
			}
			_ = json.Unmarshal(b, &st)
			if st.RuntimeStatus == "Completed" {
				if string(st.Output) != want {
					t.Fatalf("%s: output %s, want %s", id, st.Output, want)
				}
				return
			}
			if resp.StatusCode != http.StatusAccepted || time.Now().After(deadline) {
				t.Fatalf("%s after the restart: %d %s", id, resp.StatusCode, b)
			}
		}
	}
	for _, id := range acked {
		check(id, true)
	}
	for _, id := range ambiguous {
		check(id, false)
	}
	t.Logf("%d starts acknowledged, %d cut off by the shutdown; all finished after the restart", len(acked), len(ambiguous))
}
