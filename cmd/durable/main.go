// Command durable runs a durable node that serves the Durable Functions HTTP
// API with a sample function app, and talks to a running node from the
// terminal.
//
//	durable serve [--addr 127.0.0.1:7071] [--data DIR | --memory] [--api-key KEY]
//	              [--dashboard=false] [--metrics=false] [--pprof] [--traces console|otlp]
//	              [--cluster-addr HOST:PORT --cluster-peers HOST:PORT,...
//	               [--cluster-tls-cert F --cluster-tls-key F --cluster-tls-ca F]]
//	durable start NAME [INPUT] [--id ID] [--wait [--timeout D]]
//	durable status ID
//	durable watch ID [--timeout D]
//	durable list [--status S,...] [--prefix P] [--from T] [--to T] [--top N] [--all]
//	durable history ID
//	durable raise ID EVENT [JSON]
//	durable terminate|suspend|resume|rewind ID [--reason TEXT]
//	durable restart ID [--same-id]
//	durable purge ID
//	durable purge --from T [--to T] [--status S,...]
//	durable signal NAME KEY OP [JSON]
//	durable entity NAME KEY
//	durable entities [NAME] [--state] [--all]
//
// The client commands talk HTTP to --addr (default http://127.0.0.1:7071, or
// $DURABLE_ADDR) with --api-key (default $DURABLE_API_KEY); they print
// tables, or the API's JSON with --json. Flags may come before or after the
// arguments. Exit status: 0 done, 1 failed (for start --wait: the instance
// did not complete), 2 bad usage.
//
// With --cluster-addr, serve joins a cluster of nodes that share the task
// hub in --data (see CLUSTER.md); GET /healthz answers 200 once the node
// serves requests, with the body "degraded" and a line per partition that
// is down (damaged store files) instead of "ok" while any is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stderr), getenv: os.Getenv}
	code := c.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// cli is one run of the command: where it writes, and its hooks for tests.
type cli struct {
	stdout, stderr io.Writer
	// tty: stderr is a terminal, so progress is redrawn in place.
	tty    bool
	getenv func(string) string
	// onListen is told serve's address once it listens (tests use it).
	onListen func(addr string)
	// onGRPCListen is told serve's --grpc address once it listens.
	onGRPCListen func(addr string)
}

type command struct {
	run     func(c *cli, ctx context.Context, args []string) error
	summary string
}

var commands = map[string]command{
	"serve":     {(*cli).serve, "run a node serving the HTTP API and the sample function app"},
	"start":     {(*cli).start, "start an orchestration (--wait to follow it to the end)"},
	"status":    {(*cli).status, "show the status of an instance"},
	"watch":     {(*cli).watch, "follow an instance's progress until it finishes"},
	"list":      {(*cli).list, "list instances"},
	"history":   {(*cli).history, "show the history of an instance"},
	"raise":     {(*cli).raise, "raise an event to an instance"},
	"terminate": {controlCommand("terminate", "terminated"), "terminate an instance"},
	"suspend":   {controlCommand("suspend", "suspended"), "suspend an instance"},
	"resume":    {controlCommand("resume", "resumed"), "resume a suspended instance"},
	"rewind":    {controlCommand("rewind", "rewound"), "rewind a failed instance"},
	"restart":   {(*cli).restart, "restart an instance with its input"},
	"purge":     {(*cli).purge, "delete finished instances"},
	"signal":    {(*cli).signal, "signal an operation to an entity"},
	"entity":    {(*cli).entity, "show the state of an entity"},
	"entities":  {(*cli).entities, "list entities"},
}

// usageError is bad usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// failedError is a command that worked but whose outcome is a failure
// (start --wait of an instance that failed): exit status 1, already printed.
type failedError struct{ msg string }

func (e *failedError) Error() string { return e.msg }

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		c.usage(c.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "durable: unknown command %q\n\n", args[0])
		c.usage(c.stderr)
		return 2
	}
	err := cmd.run(c, ctx, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "durable %s: %s (see durable %s -h)\n", args[0], ue.msg, args[0])
		return 2
	default:
		fmt.Fprintf(c.stderr, "durable %s: %s\n", args[0], err)
		return 1
	}
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: durable COMMAND [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `durable COMMAND -h` for a command's flags.")
}

// flags makes a command's flag set, printing its usage to stderr.
func (c *cli) flags(name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: durable %s %s\n\n%s\n\nFlags:\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments, and returns the positional ones. "--" ends flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// exactly checks the number of positional arguments.
func exactly(pos []string, names ...string) error {
	if len(pos) != len(names) {
		return usagef("want %s, got %d argument(s)", strings.Join(names, " "), len(pos))
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
