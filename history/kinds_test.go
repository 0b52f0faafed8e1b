package history

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// declaredTypes returns the Type constants declared in the package's
// source, read from the source itself so that a new constant is found even
// when nobody remembers to add it anywhere else.
func declaredTypes(t *testing.T) map[Type]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[Type]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Type" {
					continue
				}
				// Numbers are part of the storage format, so each is spelled
				// out; this test relies on it.
				if len(vs.Names) != 1 || len(vs.Values) != 1 {
					t.Fatalf("%s: declare each Type constant with its own explicit number", fset.Position(vs.Pos()))
				}
				lit, ok := vs.Values[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("%s: %s: want an integer literal", fset.Position(vs.Pos()), vs.Names[0].Name)
				}
				n, err := strconv.ParseUint(lit.Value, 0, 8)
				if err != nil {
					t.Fatalf("%s: %v", vs.Names[0].Name, err)
				}
				if prev, dup := out[Type(n)]; dup {
					t.Fatalf("%s and %s are both %d", prev, vs.Names[0].Name, n)
				}
				out[Type(n)] = vs.Names[0].Name
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Type constants found")
	}
	return out
}

func TestEveryTypeIsInTheKindTable(t *testing.T) {
	declared := declaredTypes(t)
	names := map[string]Type{}
	for typ, constName := range declared {
		if typ == 0 || int(typ) >= len(kinds) || kinds[typ].name == "" {
			t.Errorf("%s (%d) has no entry in the kinds table", constName, typ)
			continue
		}
		if other, dup := names[kinds[typ].name]; dup {
			t.Errorf("%s and %s are both named %q", declared[other], constName, kinds[typ].name)
		}
		names[kinds[typ].name] = typ
	}
	for i, k := range kinds {
		if _, ok := declared[Type(i)]; !ok && k != (kind{}) {
			t.Errorf("the kinds table has an entry %q at %d, which is no declared Type", k.name, i)
		}
	}
	for i := 1; i < len(kinds); i++ {
		if _, ok := declared[Type(i)]; !ok {
			t.Errorf("Type %d is not declared: the numbers run from 1 with no gap", i)
		}
	}
}

func TestTheKindTableIsConsistent(t *testing.T) {
	closed := map[Type]bool{}
	for i := range kinds {
		typ := Type(i)
		if typ == 0 {
			continue
		}
		if typ.Opens() && !typ.IsAction() {
			t.Errorf("%s opens a task but is no action: only the code opens tasks", typ)
		}
		if typ.Index() != NoIndex && !typ.Opens() {
			t.Errorf("%s needs an index but opens no task", typ)
		}
		if typ.IsCompletion() {
			opener := typ.Closes()
			if !opener.Opens() {
				t.Errorf("%s closes %s, which opens no task", typ, opener)
			}
			if typ.IsAction() {
				t.Errorf("%s is both a completion and an action: completions come from outside the code", typ)
			}
			closed[opener] = true
		}
		if (typ.IsFailure() || typ.HasResult()) && !typ.IsCompletion() {
			t.Errorf("%s has an outcome (failure or result) but is no completion", typ)
		}
		if typ.IsFailure() && typ.HasResult() {
			t.Errorf("%s is both a failure and a result", typ)
		}
	}
	for i := range kinds {
		if typ := Type(i); typ.Opens() && !closed[typ] {
			t.Errorf("%s opens a task that no completion closes", typ)
		}
	}
}

func TestUnknownTypesAreNothing(t *testing.T) {
	typ := Type(len(kinds) + 3)
	if typ.String() != "EventType("+strconv.Itoa(int(typ))+")" {
		t.Errorf("String() = %q", typ.String())
	}
	if typ.IsAction() || typ.Opens() || typ.IsCompletion() || typ.Index() != NoIndex || typ.Closes() != 0 {
		t.Errorf("an unknown type claims to be something: %+v", typ.info())
	}
	if Type(0).String() != "EventType(0)" {
		t.Errorf("Type(0).String() = %q", Type(0).String())
	}
}

// The facts the runtime's recovery depends on, spelled out: which tasks are
// dispatched again (pending-work index), which are timers, and which need
// nothing because they travel in the durable outbox.
func TestTaskIndexes(t *testing.T) {
	for typ, want := range map[Type]TaskIndex{
		TaskScheduled:           PendingIndex,
		SubOrchestrationCreated: PendingIndex,
		TimerCreated:            TimerIndex,
		EntityOperationCalled:   NoIndex,
		EntityLockRequested:     NoIndex,
		EventSent:               NoIndex,
		EntityOperationSignaled: NoIndex,
	} {
		if got := typ.Index(); got != want {
			t.Errorf("%s.Index() = %d, want %d", typ, got, want)
		}
	}
	for _, c := range []struct{ completion, opener Type }{
		{TaskCompleted, TaskScheduled}, {TaskFailed, TaskScheduled},
		{TimerFired, TimerCreated},
		{SubOrchestrationCompleted, SubOrchestrationCreated}, {SubOrchestrationFailed, SubOrchestrationCreated},
		{EntityOperationCompleted, EntityOperationCalled}, {EntityOperationFailed, EntityOperationCalled},
		{EntityLockGranted, EntityLockRequested},
	} {
		if got := c.completion.Closes(); got != c.opener {
			t.Errorf("%s.Closes() = %s, want %s", c.completion, got, c.opener)
		}
	}
}
