// Package sockpair makes the close-on-exec Unix socket pairs a host shares with the processes
// it starts: a worker's shared-memory segment channel and the zygote's control channel.
package sockpair
