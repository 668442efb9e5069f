package mlnats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mlbridge/mlbridge/mlnats"
)

// TestHostileRequests publishes malformed requests straight on a node's service subjects
// with a raw connection (bad msgpack, wrong types, missing or absurd headers, bad blob
// references, an unknown op or action, a huge header, a reply subject nobody listens on):
// each is answered with an error, nothing panics, and the node keeps serving.
func TestHostileRequests(t *testing.T) {
	e := embedded(t)
	startNode(t, e)
	raw := connect(t, e)
	r := dial(t, e, mlnats.Options{})
	cases := []struct {
		name    string
		subject string
		hdr     nats.Header
		data    []byte
	}{
		{"bad msgpack args", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"echo"}}, []byte{0xc1, 0xff, 0x00}},
		{"truncated msgpack args", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"echo"}}, []byte{0x82, 0xa5}},
		{"args not a map", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"add"}}, []byte{0x93, 1, 2, 3}},
		{"no headers", "mlbridge.echo.call", nil, []byte{0x80}},
		{"unknown op", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"no_such_op"}}, nil},
		{"bad timeout", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"noop"}, "Mlb-Timeout": {"-5"}}, nil},
		{"huge timeout", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"noop"}, "Mlb-Timeout": {"9223372036854775807"}}, nil},
		{"bad blob ref", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"echo"}, "Mlb-Blob": {"noslash"}}, nil},
		{"blob in missing bucket", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"echo"}, "Mlb-Blob": {"nope/x"}}, nil},
		{"blob bad bucket name", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"echo"}, "Mlb-Blob": {"a.b*>/x"}}, nil},
		{"bad msgpack stream", "mlbridge.echo.stream", nats.Header{"Mlb-Op": {"count"}, "Mlb-Window": {"x"}}, []byte{0xc1}},
		{"bad msgpack submit", "mlbridge.echo.submit", nats.Header{"Mlb-Op": {"echo"}}, []byte{0xc1}},
		{"bad msgpack defs", "mlbridge.echo.defs", nats.Header{"Mlb-Op": {"create"}}, []byte{0xc1}},
		{"defs wrong types", "mlbridge.echo.defs", nats.Header{"Mlb-Op": {"create"}}, []byte{0x81, 0xa3, 'd', 'e', 'f', 0x05}},
		{"defs unknown action", "mlbridge.echo.defs", nats.Header{"Mlb-Op": {"explode"}}, nil},
		{"host subject bogus", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"host_call"}, "Mlb-Host": {"no.one.here"}}, []byte{0x81, 0xa2, 'f', 'n', 0xa1, 'x'}},
		{"huge header", "mlbridge.echo.call", nats.Header{"Mlb-Op": {"noop"}, "Mlb-Uses": {strings.Repeat("a,", 200000)}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &nats.Msg{Subject: c.subject, Header: c.hdr, Data: c.data}
			if m.Header == nil {
				m.Header = nats.Header{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rep, err := raw.RequestMsgWithContext(ctx, m)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			// Every one is refused with an error that says what was wrong (a micro error code
			// for micro-aware clients too), not run and not dropped in silence.
			if k, code := rep.Header.Get("Mlb-Kind"), rep.Header.Get("Nats-Service-Error-Code"); k != "err" || code == "" {
				t.Errorf("answer: kind %q, micro error code %q, want an error", k, code)
			}
			t.Logf("refused (%s): %s", rep.Header.Get("Nats-Service-Error-Code"), rep.Header.Get("Nats-Service-Error"))
			// The node still serves.
			if _, err := r.Call(ctx, "noop", nil); err != nil {
				t.Fatalf("node no longer serves after %s: %v", c.name, err)
			}
		})
	}
	// A reply subject nobody listens on.
	_ = raw.PublishMsg(&nats.Msg{Subject: "mlbridge.echo.call", Reply: "_INBOX.nobody", Header: nats.Header{"Mlb-Op": {"noop"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.Call(ctx, "noop", nil); err != nil {
		t.Fatal(err)
	}
}
