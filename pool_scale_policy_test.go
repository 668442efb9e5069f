package mlbridge

import (
	"errors"
	"testing"
	"time"
)

func TestDecideScale(t *testing.T) {
	base := scaleInput{Target: 1, Min: 1, Max: 4, Ready: 1}
	with := func(f func(*scaleInput)) scaleInput { in := base; f(&in); return in }
	cases := []struct {
		name   string
		in     scaleInput
		delta  int
		streak int
	}{
		{"quiet", base, 0, 0},
		{"first pressured check waits", with(func(in *scaleInput) { in.Waiting, in.OldestWait = 3, 150*time.Millisecond }), 0, 1},
		{"second pressured check grows by one", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Waiting, in.OldestWait, in.Streak = 2, 2, 3, 150*time.Millisecond, 1
		}), 1, 0},
		{"a short queue is no pressure", with(func(in *scaleInput) { in.Waiting, in.OldestWait, in.Streak = 1, 10*time.Millisecond, 1 }), 0, 0},
		{"a queue deeper than the ready workers is", with(func(in *scaleInput) { in.Waiting, in.OldestWait, in.Streak = 2, time.Millisecond, 1 }), 1, 0},
		{"heavy load doubles", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Waiting, in.OldestWait, in.Streak = 2, 2, 20, 150*time.Millisecond, 1
		}), 2, 0},
		{"doubling stops at Max", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Waiting, in.OldestWait, in.Streak = 3, 3, 30, 2*time.Second, 1
		}), 1, 0},
		{"at Max the streak only counts", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Waiting, in.OldestWait, in.Streak = 4, 4, 30, time.Second, 5
		}), 0, 6},
		{"no growth while a worker starts", with(func(in *scaleInput) {
			in.Target, in.Starting, in.Waiting, in.OldestWait, in.Streak = 2, 1, 30, time.Second, 3
		}), 0, 4},
		{"no growth while the breaker is open", with(func(in *scaleInput) {
			in.Ready, in.Waiting, in.OldestWait, in.Streak, in.BreakerOpen = 0, 30, time.Second, 3, true
		}), 0, 0},
		{"idle workers go", with(func(in *scaleInput) { in.Target, in.Ready, in.Idle = 4, 4, 2 }), -2, 0},
		{"never below Min", with(func(in *scaleInput) { in.Target, in.Ready, in.Idle, in.Min = 3, 3, 3, 2 }), -1, 0},
		{"at Min nothing goes", with(func(in *scaleInput) { in.Idle = 1 }), 0, 0},
		{"the last ready worker stays while another slot restarts", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Starting, in.Idle = 2, 1, 1, 1
		}), 0, 0},
		{"no shrinking while calls wait", with(func(in *scaleInput) {
			in.Target, in.Ready, in.Idle, in.Waiting, in.OldestWait = 3, 3, 1, 1, 5*time.Millisecond
		}), 0, 0},
	}
	for _, c := range cases {
		d := decideScale(c.in)
		if d.Delta != c.delta || d.Streak != c.streak {
			t.Errorf("%s: %+v -> delta %d streak %d (%q); want delta %d streak %d", c.name, c.in, d.Delta, d.Streak, d.Reason, c.delta, c.streak)
		}
	}
}

func TestPoolSizeConfig(t *testing.T) {
	for _, c := range []struct {
		cfg            PoolConfig
		size, min, max int
	}{
		{PoolConfig{}, 2, 2, 2},
		{PoolConfig{Size: 3}, 3, 3, 3},
		{PoolConfig{MaxSize: 4}, 1, 1, 4},
		{PoolConfig{MinSize: 2, MaxSize: 4}, 2, 2, 4},
		{PoolConfig{MinSize: 2, MaxSize: 4, Size: 3}, 3, 2, 4},
		{PoolConfig{MinSize: 2}, 2, 2, 2},
		{PoolConfig{MinSize: 1, Size: 3}, 3, 1, 3},
	} {
		if err := c.cfg.validateSize(); err != nil {
			t.Errorf("%+v: %v", c.cfg, err)
		}
		got := c.cfg.withDefaults()
		if got.Size != c.size || got.MinSize != c.min || got.MaxSize != c.max || got.ScaleDownIdle != 30*time.Second {
			t.Errorf("%+v -> size %d min %d max %d idle %s", c.cfg, got.Size, got.MinSize, got.MaxSize, got.ScaleDownIdle)
		}
	}
	for _, cfg := range []PoolConfig{
		{MinSize: 3, MaxSize: 2}, {MinSize: 2, MaxSize: 4, Size: 5}, {MinSize: 2, MaxSize: 4, Size: 1},
		{MinSize: -1}, {MaxSize: 2, Size: 3},
	} {
		if err := cfg.validateSize(); !errors.Is(err, ErrInvalidConfiguration) {
			t.Errorf("%+v: %v, want ErrInvalidConfiguration", cfg, err)
		}
	}
}
