package ids

import (
	"sync"
	"testing"

	"github.com/google/uuid"
)

// Every id is a well-formed version 4 UUID, and ids do not repeat, also
// across the refills of the pool and from many goroutines at once.
func TestNewMakesDistinctVersion4UUIDs(t *testing.T) {
	const goroutines, each = 8, 2000 // 16,000 ids: about 60 refills of the pool
	var mu sync.Mutex
	seen := make(map[string]bool, goroutines*each)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 0, each)
			for i := 0; i < each; i++ {
				local = append(local, NewString())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range local {
				if seen[s] {
					t.Errorf("id %s made twice", s)
				}
				seen[s] = true
			}
		}()
	}
	wg.Wait()
	for s := range seen {
		u, err := uuid.Parse(s)
		if err != nil {
			t.Fatalf("%q does not parse: %v", s, err)
		}
		if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d variant %s, want 4 and RFC4122", s, u.Version(), u.Variant())
		}
	}
}

// The pool hands out each random byte once: the bytes of an id are
// cleared from it, so two ids never share their random bytes.
func TestNewClearsWhatItHandsOut(t *testing.T) {
	_ = New()
	pool.Lock()
	defer pool.Unlock()
	for i := 0; i < pool.next; i++ {
		if pool.buf[i] != 0 {
			t.Fatalf("byte %d of the pool, handed out, is still %#x", i, pool.buf[i])
		}
	}
}

func BenchmarkNewString(b *testing.B) {
	for b.Loop() {
		_ = NewString()
	}
}

func BenchmarkUUIDNewString(b *testing.B) {
	for b.Loop() {
		_ = uuid.NewString()
	}
}
