package mlbridge_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlbridge/mlbridge/internal/worker/fakeworker"
)

// The fields the status page reads: recent errors, slots with restart reasons, worker states.

func TestStatsRecentErrorsAreBoundedNewestFirstAndCut(t *testing.T) {
	p := openFake(t, fakePoolConfig(&fakeworker.Launcher{}, 1))
	fail := func(msg string) {
		_, err := p.Call(context.Background(), "fail", map[string]any{"category": "model", "message": msg})
		if err == nil {
			t.Fatal("fail succeeded")
		}
	}
	for i := range 25 {
		fail(strings.Repeat("x", i))
	}
	fail(strings.Repeat("é", 1000)) // multi-byte: cut on a rune boundary
	st := p.Stats()
	if len(st.RecentErrors) != 20 {
		t.Fatalf("%d recent errors, want 20 (bounded)", len(st.RecentErrors))
	}
	newest := st.RecentErrors[0]
	if newest.Category != "model" || newest.Op == "" || newest.Time.IsZero() {
		t.Fatalf("newest error: %+v", newest)
	}
	if len(newest.Message) > 240 || !strings.HasSuffix(newest.Message, "…") || !strings.Contains(newest.Message, "é") {
		t.Fatalf("long message not cut to 240 bytes: %d bytes %q", len(newest.Message), newest.Message)
	}
	if !strings.Contains(st.RecentErrors[1].Message, strings.Repeat("x", 24)) {
		t.Fatalf("second newest is not the 25th call: %q", st.RecentErrors[1].Message)
	}
	if _, err := p.Call(context.Background(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	if got := len(p.Stats().RecentErrors); got != 20 {
		t.Fatalf("a successful call changed the ring: %d", got)
	}
}

func TestStatsSlotsReportARestartAndWhy(t *testing.T) {
	l := &fakeworker.Launcher{}
	cfg := fakePoolConfig(l, 2)
	p := openFake(t, cfg)
	st := p.Stats()
	if len(st.Slots) != 2 || st.Slots[0].Pid == 0 || st.Slots[1].Pid == 0 || st.Slots[0].Restarts != 0 || st.Slots[0].LastReason != "" {
		t.Fatalf("fresh slots: %+v", st.Slots)
	}
	for range 4 { // both workers serve: their death is a crash, not a failed start
		if err := echo(p, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	victim := l.Workers()[0]
	slot := -1
	for _, s := range st.Slots {
		if s.Pid == victim.Pid() {
			slot = s.Slot
		}
	}
	if slot < 0 {
		t.Fatalf("pid %d in no slot: %+v", victim.Pid(), st.Slots)
	}
	victim.Crash(syscall.SIGKILL)
	eventually(t, "the slot to report its new worker and why the old one went", func() bool {
		s := p.Stats().Slots[slot]
		return s.Pid != 0 && s.Pid != victim.Pid() && s.Restarts == 1 && s.LastReason != "" && !s.LastRestart.IsZero()
	})
	s := p.Stats().Slots[slot]
	if !strings.Contains(s.LastReason, "killed") && !strings.Contains(s.LastReason, "signal") {
		t.Errorf("reason %q does not say the worker was killed", s.LastReason)
	}
	for _, w := range p.Stats().Workers {
		if w.State != "ready" {
			t.Errorf("worker %d: state %q", w.Pid, w.State)
		}
	}
}
