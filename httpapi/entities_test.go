package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

var durableQueryAll = durable.Query{PageSize: durable.MaxPageSize}

// fakeEntities records signals and applies them to counters (add, reset,
// delete) kept in a map. Only the entity name "Counter" (any case) is
// registered.
type fakeEntities struct {
	mu      sync.Mutex
	signals []string
	states  map[durable.EntityID]json.RawMessage
	at      time.Time
}

func newFakeEntities() *fakeEntities {
	return &fakeEntities{states: map[durable.EntityID]json.RawMessage{}, at: time.Date(2024, 5, 1, 10, 0, 0, 500, time.UTC)}
}

func (f *fakeEntities) check(id durable.EntityID) error {
	if !strings.EqualFold(id.Name, "Counter") {
		return fmt.Errorf("entity %q: %w", id.Name, durable.ErrEntityNotRegistered)
	}
	return nil
}

func (f *fakeEntities) SignalEntity(_ context.Context, id durable.EntityID, op string, input any) error {
	if err := f.check(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	in := "<nil>"
	if raw, ok := input.(json.RawMessage); ok {
		in = string(raw)
	}
	f.signals = append(f.signals, fmt.Sprintf("%s/%s %s %s", id.Name, id.Key, op, in))
	// A counter: add, reset, delete.
	key := durable.EntityID{Name: "Counter", Key: id.Key}
	switch op {
	case "add":
		var cur, n int
		_ = json.Unmarshal(f.states[key], &cur)
		_ = json.Unmarshal([]byte(in), &n)
		f.states[key], _ = json.Marshal(cur + n)
	case "reset":
		f.states[key] = json.RawMessage("0")
	case "delete":
		delete(f.states, key)
	}
	return nil
}

func (f *fakeEntities) ReadEntityState(_ context.Context, id durable.EntityID) (json.RawMessage, error) {
	if err := f.check(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.states[durable.EntityID{Name: "Counter", Key: id.Key}]
	if !ok {
		return nil, fmt.Errorf("%s: %w", id, durable.ErrEntityNotFound)
	}
	return s, nil
}

// ListEntities pages one entity at a time; the token is the next index.
func (f *fakeEntities) ListEntities(_ context.Context, q durable.EntityQuery) (*durable.EntityPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []durable.EntityID
	for id := range f.states {
		if q.Name == "" || strings.EqualFold(q.Name, id.Name) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Key < ids[j].Key })
	start := 0
	if q.ContinuationToken != "" {
		if _, err := fmt.Sscan(q.ContinuationToken, &start); err != nil {
			return nil, fmt.Errorf("%w: bad token", durable.ErrInvalidInput)
		}
	}
	page := &durable.EntityPage{}
	if start < len(ids) {
		e := durable.EntityMetadata{ID: ids[start], LastOperationTime: f.at}
		if q.FetchState {
			e.State = f.states[ids[start]]
		}
		page.Entities = append(page.Entities, e)
		if start+1 < len(ids) {
			page.ContinuationToken = fmt.Sprint(start + 1)
		}
	}
	return page, nil
}

func TestSignalEntitySendsTheOperationAndItsInput(t *testing.T) {
	fake := newFakeEntities()
	e := newEnv(t, Options{Entities: fake})
	expectCode(t, "signal JSON", e.do("POST", WebhookBase+"/entities/Counter/c1?op=add", `5`), http.StatusAccepted)
	expectCode(t, "signal text", e.do("POST", RPCBase+"/entities/Counter/c1?op=note", `hi there`, "Content-Type", "text/plain"), http.StatusAccepted)
	expectCode(t, "signal without body", e.do("POST", WebhookBase+"/entities/Counter/c1?op=reset", ``), http.StatusAccepted)
	expectCode(t, "delete", e.do("DELETE", WebhookBase+"/entities/Counter/c1", ``), http.StatusAccepted)
	expectCode(t, "empty key", e.do("POST", WebhookBase+"/entities/Counter?op=add", `1`), http.StatusAccepted)
	want := []string{"Counter/c1 add 5", `Counter/c1 note "hi there"`, "Counter/c1 reset <nil>", "Counter/c1 delete <nil>", "Counter/ add 1"}
	if got := strings.Join(fake.signals, "|"); got != strings.Join(want, "|") {
		t.Fatalf("signals %q, want %q", fake.signals, want)
	}
	expectCode(t, "malformed JSON", e.do("POST", WebhookBase+"/entities/Counter/c1?op=add", `{"a":`), http.StatusBadRequest)
	expectCode(t, "unknown entity", e.do("POST", WebhookBase+"/entities/Nope/c1?op=add", `1`), http.StatusBadRequest)
}

func TestReadEntityStateAnswersTheRawStateOr404(t *testing.T) {
	fake := newFakeEntities()
	fake.states[durable.EntityID{Name: "Counter", Key: "c1"}] = json.RawMessage(`{"value":3}`)
	fake.states[durable.EntityID{Name: "Counter", Key: ""}] = json.RawMessage(`7`)
	e := newEnv(t, Options{Entities: fake})
	r := e.do("GET", WebhookBase+"/entities/Counter/c1", "")
	expectCode(t, "read", r, http.StatusOK)
	if string(r.body) != `{"value":3}` {
		t.Fatalf("state %s", r.body)
	}
	r = e.do("GET", WebhookBase+"/entities/Counter/$", "")
	if r.code != 200 || string(r.body) != `7` {
		t.Fatalf("empty key via $: %s", r)
	}
	expectCode(t, "missing entity", e.do("GET", WebhookBase+"/entities/Counter/none", ""), http.StatusNotFound)
	expectCode(t, "unknown entity name", e.do("GET", WebhookBase+"/entities/Nope/c1", ""), http.StatusBadRequest)
}

func TestListEntitiesLowerCasesNamesAndPages(t *testing.T) {
	fake := newFakeEntities()
	fake.states[durable.EntityID{Name: "Counter", Key: "a"}] = json.RawMessage(`1`)
	fake.states[durable.EntityID{Name: "Counter", Key: "b"}] = json.RawMessage(`2`)
	e := newEnv(t, Options{Entities: fake})
	var keys []string
	token := ""
	for i := 0; i < 4; i++ {
		var hdr []string
		if token != "" {
			hdr = []string{"x-ms-continuation-token", token}
		}
		r := e.do("GET", WebhookBase+"/entities/Counter?fetchState=true", "", hdr...)
		expectCode(t, "list", r, http.StatusOK)
		var page []map[string]json.RawMessage
		r.json(t, &page)
		for _, p := range page {
			var id struct{ Name, Key string }
			_ = json.Unmarshal(p["entityId"], &id)
			if id.Name != "counter" || string(p["lastOperationTime"]) != `"2024-05-01T10:00:00.0000005Z"` || p["state"] == nil {
				t.Fatalf("entity %s", r.body)
			}
			keys = append(keys, id.Key+"="+string(p["state"]))
		}
		token = r.header.Get("x-ms-continuation-token")
		if token == "" {
			break
		}
	}
	if strings.Join(keys, ",") != "a=1,b=2" {
		t.Fatalf("listed %v", keys)
	}
	r := e.do("GET", WebhookBase+"/entities/", "")
	var page []map[string]json.RawMessage
	r.json(t, &page)
	if len(page) != 1 || page[0]["state"] != nil {
		t.Fatalf("without fetchState: %s", r.body)
	}
	for _, bad := range []string{"?fetchState=sure", "?top=-2", "?lastOperationTimeFrom=noon"} {
		expectCode(t, bad, e.do("GET", WebhookBase+"/entities"+bad, ""), 400)
	}
}

// The same routes over the runtime's own entities (the default).
func TestEntityRoutesOverTheRuntime(t *testing.T) {
	e := newEnv(t, Options{})
	base := WebhookBase + "/entities/Counter/rt-1"
	expectCode(t, "signal add", e.do("POST", base+"?op=add", `5`), http.StatusAccepted)
	expectCode(t, "signal add", e.do("POST", RPCBase+"/entities/counter/rt-1?op=add", `2`), http.StatusAccepted)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do("GET", base, "")
		if r.code == http.StatusOK && string(r.body) == "7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter never reached 7: %s", r)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := e.do("GET", WebhookBase+"/entities?fetchState=true", "")
	expectCode(t, "list", r, http.StatusOK)
	if !strings.Contains(string(r.body), `"entityId":{"name":"counter","key":"rt-1"}`) || !strings.Contains(string(r.body), `"state":7`) {
		t.Fatalf("list %s", r.body)
	}
	expectCode(t, "read a counter never signalled", e.do("GET", WebhookBase+"/entities/Counter/none", ""), http.StatusNotFound)
	expectCode(t, "signal an unknown entity", e.do("POST", WebhookBase+"/entities/Nope/k?op=add", `1`), http.StatusBadRequest)
	// The runtime reads without checking the name: no such entity, 404.
	expectCode(t, "read an unknown entity", e.do("GET", WebhookBase+"/entities/Nope/k", ""), http.StatusNotFound)
	expectCode(t, "key with a control character", e.do("POST", WebhookBase+"/entities/Counter/a%01b?op=add", `1`), http.StatusBadRequest)
	expectCode(t, "bad continuation token", e.do("GET", WebhookBase+"/entities", "", "x-ms-continuation-token", "%%"), http.StatusBadRequest)
	expectCode(t, "delete", e.do("DELETE", base, ""), http.StatusAccepted)
	for {
		r := e.do("GET", base, "")
		if r.code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter never deleted: %s", r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
