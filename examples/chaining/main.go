// Command chaining shows the function chaining pattern of Durable Functions:
// an orchestrator calls activities in sequence, each one taking the output
// of the one before. Here a raw sentence goes through Normalize, Tokenize,
// CountWords and Report; every result is recorded in the instance's history,
// so after a crash the chain resumes after the last finished step instead of
// starting over.
//
//	go run ./examples/chaining                          # data in ./chaining-data
//	go run ./examples/chaining -data DIR -text "To be or not to be"
//
// The program prints the instance's history (each step's input and output)
// and the final report.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/history"
	"github.com/durable-go/durable/orchestration"
)

// WordCount is how often a word occurs.
type WordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

// Chain runs the four steps in order; each takes the previous one's output.
func Chain(ctx *orchestration.Context) (any, error) {
	var text string
	if err := ctx.Input(&text); err != nil {
		return nil, err
	}
	normalized, err := orchestration.Await[string](ctx.CallActivity("Normalize", text))
	if err != nil {
		return nil, err
	}
	words, err := orchestration.Await[[]string](ctx.CallActivity("Tokenize", normalized))
	if err != nil {
		return nil, err
	}
	counts, err := orchestration.Await[[]WordCount](ctx.CallActivity("CountWords", words))
	if err != nil {
		return nil, err
	}
	return orchestration.Await[string](ctx.CallActivity("Report", counts))
}

// Normalize lowercases text and replaces punctuation by spaces.
func Normalize(_ context.Context, text string) (string, error) {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) {
			return unicode.ToLower(r)
		}
		return ' '
	}, text), nil
}

// Tokenize splits text into words.
func Tokenize(_ context.Context, text string) ([]string, error) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return nil, fmt.Errorf("no words in %q", text)
	}
	return words, nil
}

// CountWords counts the words, most frequent first (ties in alphabetical
// order).
func CountWords(_ context.Context, words []string) ([]WordCount, error) {
	n := map[string]int{}
	for _, w := range words {
		n[w]++
	}
	counts := make([]WordCount, 0, len(n))
	for w, c := range n {
		counts = append(counts, WordCount{Word: w, Count: c})
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].Count != counts[j].Count {
			return counts[i].Count > counts[j].Count
		}
		return counts[i].Word < counts[j].Word
	})
	return counts, nil
}

// Report renders the counts as one line.
func Report(_ context.Context, counts []WordCount) (string, error) {
	parts := make([]string, len(counts))
	total := 0
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%s×%d", c.Word, c.Count)
		total += c.Count
	}
	return fmt.Sprintf("%d words, %d distinct: %s", total, len(counts), strings.Join(parts, " ")), nil
}

// Register registers the orchestrator "Chain" and its activities.
func Register(rt *durable.Runtime) error {
	if err := rt.RegisterOrchestrator("Chain", Chain); err != nil {
		return err
	}
	for name, fn := range map[string]any{
		"Normalize":  Normalize,
		"Tokenize":   Tokenize,
		"CountWords": CountWords,
		"Report":     Report,
	} {
		if err := rt.RegisterActivity(name, fn); err != nil {
			return err
		}
	}
	return nil
}

const defaultText = "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!"

func main() {
	dir := flag.String("data", "chaining-data", "directory of the task hub (created if missing)")
	text := flag.String("text", defaultText, "the sentence to run through the chain")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(durable.Options{Dir: *dir, Logger: logger}, *text, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chaining:", err)
		os.Exit(1)
	}
}

// run opens a runtime with opts, runs one chain on text and prints what
// happened to out.
func run(opts durable.Options, text string, out io.Writer) error {
	rt, err := durable.Open(opts)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := Register(rt); err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := rt.Client()

	id, err := client.Start(ctx, "Chain", text)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started instance %s with input %q\n", id, text)
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil {
		return err
	}
	events, err := client.History(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "history:")
	for _, ev := range events {
		switch ev.Type {
		case history.TaskScheduled:
			fmt.Fprintf(out, "  %-13s %-10s input  %s\n", ev.Type, ev.Name, ev.Payload)
		case history.TaskCompleted:
			fmt.Fprintf(out, "  %-13s %-10s output %s\n", ev.Type, "", ev.Payload)
		case history.TaskFailed:
			fmt.Fprintf(out, "  %-13s %-10s %s\n", ev.Type, "", ev.Failure.Error())
		}
	}
	fmt.Fprintln(out, "status:", st.RuntimeStatus)
	if st.Failure != nil {
		return fmt.Errorf("instance %s failed: %s", id, st.Failure.Error())
	}
	var report string
	if err := st.DecodeOutput(&report); err != nil {
		return err
	}
	fmt.Fprintln(out, "output:", report)
	return nil
}
