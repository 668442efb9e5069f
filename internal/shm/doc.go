// Package shm moves large byte payloads between the host and a worker through memory both
// processes map instead of through the protocol pipe.
//
// A Segment is a shared-memory file (Linux: a memfd; macOS and the other Unixes: a temporary
// file unlinked as soon as it is created, so nothing can be left behind in the filesystem)
// mapped into this process. A Channel is the per-worker Unix socket that carries segments'
// file descriptors (SCM_RIGHTS), each tagged with the id the protocol frame uses to name it.
// The sender sends the descriptor before the frame that refers to it, then drops its own
// descriptor: from then on the segment lives exactly as long as someone maps it or holds the
// descriptor, so a dead process can never leave one behind (a descriptor still in a socket's
// queue is freed with the socket).
//
// Windows has neither: Supported is false there and arrays travel through the pipe.
package shm
