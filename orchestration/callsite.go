package orchestration

import (
	"path"
	"runtime"
	"strconv"
	"strings"
)

// engineDir is the directory of this package's source, as the runtime
// names files (forward slashes, also under -trimpath).
var engineDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return path.Dir(file)
}()

// callers is the stack of the code's call into the context that asked for
// an action, kept as program counters and turned into a file:line only when
// an error needs it: capturing them costs a short stack walk per action
// while replaying, resolving them costs more and is rare.
type callers [10]uintptr

// callStack captures the stack of the code's call that reached here, while
// the code's goroutine runs. Actions the engine asks for on its own side (a
// retry scheduled by a completion listener) have no such call: zero.
func (e *Execution) callStack() callers {
	var c callers
	if e.running {
		runtime.Callers(2, c[:])
	}
	return c
}

// String returns "file:line" of the innermost frame outside this package's
// own (non-test) files: the orchestrator's call. "" when there is none.
func (c *callers) String() string {
	n := 0
	for n < len(c) && c[n] != 0 {
		n++
	}
	if n == 0 {
		return ""
	}
	frames := runtime.CallersFrames(c[:n])
	for {
		f, more := frames.Next()
		if f.File != "" && !isEngineFile(f.File) && !strings.HasPrefix(f.Function, "runtime.") {
			return f.File + ":" + strconv.Itoa(f.Line)
		}
		if !more {
			return ""
		}
	}
}

// isEngineFile reports whether file is one of this package's own sources
// (its tests are orchestrator code like any other).
func isEngineFile(file string) bool {
	return path.Dir(file) == engineDir && !strings.HasSuffix(file, "_test.go")
}
