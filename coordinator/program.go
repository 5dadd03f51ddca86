package coordinator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/liminal-data/liminal/spec"
)

// Program is what a command or spark task runs: a program with arguments,
// followed to its end. Its output lines go to the run's log; the tail of
// its output is kept for the error message.
type Program struct {
	// Kind is "command" or "spark".
	Kind string
	Argv []string
	// Env is added to Liminal's environment (NAME=VALUE).
	Env []string
	// Dir is the working directory (the spec's directory).
	Dir string
}

// tailLines is how many output lines an error message quotes.
const tailLines = 20

// runProgram runs the task's program until it exits: exit status 0 is
// success, anything else a failure with the output's tail. The program
// runs in its own process group, so cancellation and timeouts kill
// everything it started. Failures are retried as the task allows.
func (c *Coordinator) runProgram(ctx context.Context, t *Task, tr *TaskResult, log *slog.Logger) error {
	max := c.opts.MaxAttempts
	if t.MaxAttempts > 0 {
		max = t.MaxAttempts
	}
	c.opts.Progress.TaskStarted(t.Name, 1, 0)
	for n := 1; ; n++ {
		tr.Attempts = n
		err := runOnce(ctx, t.Program, log.With("attempt", n))
		if err == nil {
			tr.Partitions = 1
			c.opts.Progress.PartitionDone(t.Name, 0, 0)
			return nil
		}
		if ctx.Err() != nil || n >= max {
			if n > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, n)
			}
			return err
		}
		tr.Retries++
		d := c.backoff(t.RetryDelay, n)
		log.Warn("program failed; retrying", "attempt", n, "retry_in", d.String(), "error", err)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func runOnce(ctx context.Context, p *Program, log *slog.Logger) error {
	if len(p.Argv) == 0 {
		return errors.New("no program to run")
	}
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout // one stream, in order
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Argv[0], err)
	}
	log.Info("program started", "program", p.Argv[0], "pid", cmd.Process.Pid)
	var (
		mu   sync.Mutex
		tail []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			log.Info("program output", "line", line)
			mu.Lock()
			tail = append(tail, line)
			if len(tail) > tailLines {
				tail = tail[1:]
			}
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	stop := context.AfterFunc(ctx, func() {
		// The whole process group: spark-submit's JVM, a shell's children.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.AfterFunc(5*time.Second, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	})
	<-done
	err = cmd.Wait()
	stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	mu.Lock()
	last := strings.Join(tail, "\n")
	mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			err = fmt.Errorf("killed by signal %s", st.Signal())
		} else {
			err = fmt.Errorf("exit status %d", ee.ExitCode())
		}
	}
	if last != "" {
		return fmt.Errorf("%s %w; last output:\n%s", filepath.Base(p.Argv[0]), err, last)
	}
	return fmt.Errorf("%s %w", filepath.Base(p.Argv[0]), err)
}

// SparkArgv builds the spark-submit command line of a spark task.
func SparkArgv(sp *spec.Spark, dir string) ([]string, error) {
	submit := sp.SparkSubmit
	if submit == "" {
		if home := os.Getenv("SPARK_HOME"); home != "" {
			submit = filepath.Join(home, "bin", "spark-submit")
		} else if p, err := exec.LookPath("spark-submit"); err == nil {
			submit = p
		} else {
			return nil, errors.New("spark-submit not found: set spark.spark_submit, SPARK_HOME, or put spark-submit on PATH (pip install pyspark provides one)")
		}
	} else if !filepath.IsAbs(submit) && strings.Contains(submit, string(filepath.Separator)) {
		submit = filepath.Join(dir, submit)
	}
	master := sp.Master
	if master == "" {
		master = "local[*]"
	}
	argv := []string{submit, "--master", master}
	if sp.Class != "" {
		argv = append(argv, "--class", sp.Class)
	}
	keys := make([]string, 0, len(sp.Conf))
	for k := range sp.Conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		argv = append(argv, "--conf", k+"="+sp.Conf[k])
	}
	app := sp.Application
	if !filepath.IsAbs(app) {
		app = filepath.Join(dir, app)
	}
	return append(append(argv, app), sp.Args...), nil
}
