package mlbridge

import "time"

// The autoscaling policy: a pure function from what the scaler observed to a decision, so
// that it can be tested without processes or clocks (pool_scale.go applies it).
//
// Growth: calls wait only when every ready worker is at its in-flight limit, so the queue is
// the signal. A check is under pressure when calls wait and either the oldest has waited
// scaleUpWait or more calls wait than workers are ready. scaleUpChecks pressured checks in a
// row (one check every scaleInterval) add a worker; under heavy pressure (the oldest waited
// scaleHeavyWait, or the queue is scaleHeavyDepth× the ready workers) the pool doubles
// instead. No growth while a worker is still starting (it will take part of the queue), nor
// while the crash-loop breaker is open (a new slot would only add failed starts).
//
// Shrinking: a ready worker that served nothing for ScaleDownIdle is stopped gracefully,
// never below MinSize (slots, and ready workers) and never while calls wait.
const (
	scaleInterval   = 200 * time.Millisecond
	scaleUpChecks   = 2
	scaleUpWait     = 100 * time.Millisecond
	scaleHeavyWait  = time.Second
	scaleHeavyDepth = 4
)

// scaleInput is one check's observation of the pool.
type scaleInput struct {
	Target, Min, Max int           // slots now, and the bounds
	Ready            int           // workers taking calls
	Starting         int           // slots whose worker is not ready yet (starting or restarting)
	Waiting          int           // calls queued for a worker
	OldestWait       time.Duration // how long the oldest queued call has waited
	Idle             int           // ready workers that served nothing for ScaleDownIdle
	BreakerOpen      bool
	Streak           int // pressured checks in a row before this one
}

// scaleDecision says how many slots to add (Delta > 0) or stop (Delta < 0), why, and the
// pressure streak to carry to the next check.
type scaleDecision struct {
	Delta  int
	Streak int
	Reason string
}

func decideScale(in scaleInput) scaleDecision {
	if in.BreakerOpen {
		return scaleDecision{Reason: "crash-loop breaker open"}
	}
	ready := max(in.Ready, 1)
	pressured := in.Waiting > 0 && (in.OldestWait >= scaleUpWait || in.Waiting > in.Ready)
	if pressured {
		streak := in.Streak + 1
		if in.Target >= in.Max || in.Starting > 0 || streak < scaleUpChecks {
			return scaleDecision{Streak: streak}
		}
		delta, reason := 1, "calls waiting"
		if in.OldestWait >= scaleHeavyWait || in.Waiting >= scaleHeavyDepth*ready {
			delta, reason = max(in.Target, 1), "calls waiting, heavy load"
		}
		return scaleDecision{Delta: min(delta, in.Max-in.Target), Reason: reason}
	}
	// Never below Min ready workers either: a slot still (re)starting is no replacement yet.
	if n := min(in.Idle, in.Target-in.Min, in.Ready-in.Min); in.Waiting == 0 && n > 0 {
		return scaleDecision{Delta: -n, Reason: "idle"}
	}
	return scaleDecision{}
}
