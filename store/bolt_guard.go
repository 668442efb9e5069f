package store

import (
	"fmt"
	"runtime/debug"
)

// guard runs fn and turns a panic into a *CorruptError. bbolt trusts the bytes of its file: a
// damaged page shows up as a panic (a failed assertion, an index out of range) or as a fault
// (SIGBUS/SIGSEGV) reading the memory-mapped file, anywhere a page is read. SetPanicOnFault
// makes such a fault a panic on this goroutine instead of a crash of the process, so fn must
// do its reads on the calling goroutine (db.View and db.Update do).
func guard(path, op string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Sprintf("%s: bbolt failed reading the file (%v)", op, r), nil)
		}
	}()
	return fn()
}
