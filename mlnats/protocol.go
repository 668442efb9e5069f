package mlnats

import (
	"fmt"
	"strings"
	"time"
)

// The wire between a Remote and a Node. A request goes to <prefix>.<bridge>.<endpoint> with
// a reply subject unique to the call; the node answers on it with one or more messages,
// each named by the Kind header. Control messages (cancel, stream credit) go to
// <prefix>.<bridge>.ctl.<node id>, or to <prefix>.<bridge>.ctl._all before the client knows
// which node took the call.
//
// Host calls go the other way (host.go, remote_host.go): a client with host functions names
// its private subject in Mlb-Host; the node sends each call there (Mlb-Fn, Mlb-Id: the reply
// subject of the client's call it is made for, Mlb-Depth) with a reply subject of its own,
// and the client answers as a node does (hb while it runs, then res or err); a cancel goes
// to the same subject with Mlb-Ctl: cancel and Mlb-Id: the host call's reply subject.
const (
	// DefaultPrefix is the first token of every subject.
	DefaultPrefix = "mlbridge"
	// ServiceVersion is the version of this protocol, the micro services' version.
	ServiceVersion = "1.0.0"

	endpointCall   = "call"
	endpointSubmit = "submit"
	endpointStream = "stream"
	endpointDefs   = "defs"

	hKind    = "Mlb-Kind"    // on replies: hb, res, err, chunk, end
	hNode    = "Mlb-Node"    // on replies: the node's id (its control subject's last token)
	hOp      = "Mlb-Op"      // the op (call, submit, stream) or action (defs)
	hTimeout = "Mlb-Timeout" // what is left of the caller's deadline, in microseconds
	hHB      = "Mlb-Hb"      // the heartbeat interval the client wants, in milliseconds
	hUses    = "Mlb-Uses"    // resources the call uses, comma-separated
	hIdem    = "Mlb-Idem"    // "1" when the caller marked the call idempotent
	hWindow  = "Mlb-Window"  // a stream's initial credit
	hID      = "Mlb-Id"      // on control messages: the call's reply subject; on host calls, the client's call's
	hCtl     = "Mlb-Ctl"     // on control messages: cancel, credit
	hCredit  = "Mlb-Credit"  // credit granted
	hHost    = "Mlb-Host"    // on requests: the subject the client serves its host functions on
	hDepth   = "Mlb-Depth"   // host-call nesting: a request made from a host function; a host call's own depth
	hFn      = "Mlb-Fn"      // on host calls (node → client): the function's name
	// On a request with Mlb-Host (client → node) and on a host call (node → client): "1" when
	// the sender reads, and deletes, host-call values its peer stored in the Object Store
	// (Mlb-Blob). A peer that did not say so (an older version) gets them inline, or the
	// typed ErrPayloadTooLarge when they do not fit, as before.
	hHostBlobs = "Mlb-Host-Blobs"
	// On requests: the client's LostAfter in milliseconds, how long it waits for a node it
	// cannot hear. A node cancels a call whose client it cannot reach only after that long
	// (a client reconnecting within it keeps its call).
	hLost = "Mlb-Lost"

	kindHB    = "hb"
	kindRes   = "res"
	kindErr   = "err"
	kindChunk = "chunk"
	kindEnd   = "end"

	ctlCancel = "cancel"
	ctlCredit = "credit"
	ctlAll    = "_all"
)

type subjects struct {
	call, submit, stream, defs, ctlAll string
	ctlPrefix                          string
}

func newSubjects(prefix, bridge string) subjects {
	base := prefix + "." + bridge + "."
	return subjects{
		call: base + endpointCall, submit: base + endpointSubmit,
		stream: base + endpointStream, defs: base + endpointDefs,
		ctlAll: base + "ctl." + ctlAll, ctlPrefix: base + "ctl.",
	}
}

// checkName refuses names that are not one subject token (a bridge name, a prefix token).
func checkName(what, s string) error {
	if s == "" || strings.ContainsAny(s, ".*> \t\r\n") {
		return fmt.Errorf("mlnats: %s %q must be one NATS subject token (no dots, wildcards or spaces)", what, s)
	}
	return nil
}

// serviceName is the micro service name of a bridge (micro allows [A-Za-z0-9_-]).
func serviceName(bridge string) string {
	var b strings.Builder
	b.WriteString("mlbridge-")
	for _, r := range bridge {
		if r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func formatMicros(d time.Duration) string { return fmt.Sprint(d.Microseconds()) }
