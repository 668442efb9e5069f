package pyenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// heartbeat is how long an installer may be silent before a "still ..." line is printed.
var heartbeat = 10 * time.Second

// run runs cmd, streaming its output to Out line by line; while it is silent for heartbeat,
// prints "<what> (<elapsed>)…" so long builds do not look hung. When Out discards the output,
// the error carries its last lines.
func (s *setup) run(ctx context.Context, what string, cmd *exec.Cmd) error {
	if cmd.Env == nil {
		cmd.Env = s.environ()
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	var (
		mu   sync.Mutex
		last = time.Now()
		tail []string
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			last = time.Now()
			tail = append(tail, sc.Text())
			if len(tail) > 20 {
				tail = tail[1:]
			}
			fmt.Fprintln(s.opts.Out, "  "+sc.Text())
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	waitErr := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); waitErr <- err }()
	tick := time.NewTicker(heartbeat / 4)
	defer tick.Stop()
	for {
		select {
		case err := <-waitErr:
			<-done
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				msg := fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
				if s.opts.Out == io.Discard { // the output was not shown: its end explains the failure
					msg = fmt.Errorf("%w\n%s", msg, strings.Join(tail, "\n"))
				}
				return msg
			}
			return nil
		case <-tick.C:
			mu.Lock()
			if time.Since(last) >= heartbeat {
				last = time.Now()
				s.printf("%s (%s)…\n", what, time.Since(start).Round(time.Second))
			}
			mu.Unlock()
		}
	}
}
