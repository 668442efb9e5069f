// Package wire implements the mlbridge frame format and message envelope described in
// spec/protocol.md: a uint32 big-endian length, then one msgpack map.
//
// It is the only code that touches raw protocol bytes on the Go side. Decoding is strict and
// bounded (max frame size checked before anything is allocated, values deeper than MaxDepth
// skipped without recursing into them) because the peer is another process whose output we
// do not trust blindly. Encoding knows the same limits while it writes, so refusing a request
// too big or too deep costs no copy of it.
package wire
