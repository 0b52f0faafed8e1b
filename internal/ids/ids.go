// Package ids makes the random (version 4) UUIDs that name instances and
// executions. It reads the operating system's random source in blocks of
// 4 KiB instead of once per id: each read is a system call (or a vDSO call
// that needs a large stack, which the goroutine asking for an id, often a
// fresh one, grows into), and a start of an instance made two of them.
package ids

import (
	"crypto/rand"
	"sync"

	"github.com/google/uuid"
)

// pool holds random bytes not handed out yet: buf[next:].
var pool struct {
	sync.Mutex
	buf  [4096]byte
	next int
}

func init() { pool.next = len(pool.buf) }

// New returns a new random UUID (version 4, RFC 9562 variant).
func New() uuid.UUID {
	var u uuid.UUID
	pool.Lock()
	if pool.next == len(pool.buf) {
		_, _ = rand.Read(pool.buf[:]) // crypto/rand.Read never fails (it aborts the process instead)
		pool.next = 0
	}
	copy(u[:], pool.buf[pool.next:])
	clear(pool.buf[pool.next : pool.next+len(u)]) // handed out: not kept in memory
	pool.next += len(u)
	pool.Unlock()
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return u
}

// NewString returns New() in its canonical text form.
func NewString() string { return New().String() }
