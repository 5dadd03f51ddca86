// Command liminal runs declarative SQL-ETL pipelines, partitioned and in
// parallel, with atomic, exactly-once output. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	_ "github.com/liminal-data/liminal/connectors/all"
	_ "github.com/liminal-data/liminal/infer/onnx" // the onnx model format (cgo, libonnxruntime at run time)
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the run failed (or was cancelled)
	exitInvalid = 2 // invalid spec, SQL or usage
)

// exitError carries an exit code to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exit(code int, err error) error { return &exitError{code: code, err: err} }

type globals struct {
	logFormat string
	logLevel  string
	stdout    io.Writer
	stderr    io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "liminal: %v\n", ee.err)
		}
		return ee.code
	}
	// Anything else is cobra rejecting the command line.
	fmt.Fprintf(stderr, "liminal: %v\nRun 'liminal --help' for usage.\n", err)
	return exitInvalid
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "liminal",
		Short: "Run declarative SQL-ETL pipelines, partitioned and in parallel",
		Long: `Liminal runs SQL-ETL jobs described in a YAML spec (or ad hoc with 'liminal sql'):
it splits the input into partitions, runs them in parallel through an embedded
DuckDB executor, and commits the output atomically and exactly once.

Exit codes: 0 success, 1 the run failed or was cancelled, 2 invalid spec, SQL or usage,
3 skipped: --skip-if-committed found the run id already committed.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn or error (default info; warn when progress is shown on a terminal)")
	root.AddCommand(newRunCmd(g), newSQLCmd(g), newScoreCmd(g), newServeCmd(g), newPlanCmd(g), newValidateCmd(g), newGenCmd(g), newVersionCmd(g))
	root.AddCommand(newSchedulerCmd(g), newRunsCmd(g), newExportCmd(g))
	root.AddCommand(newCoordinatorCmd(g), newWorkerCmd(g))
	return root
}

func (g *globals) isTTY() bool {
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (g *globals) logger(progressShown bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	switch g.logLevel {
	case "":
		if progressShown {
			level = slog.LevelWarn
		}
	case "debug":
		level = slog.LevelDebug
	case "info":
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, exit(exitInvalid, fmt.Errorf("unknown --log-level %q (want debug, info, warn or error)", g.logLevel))
	}
	o := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, o)), nil
	}
	return nil, exit(exitInvalid, fmt.Errorf("unknown --log-format %q (want text or json)", g.logFormat))
}

// printJSON writes v as one line: with --json, the last line of stdout.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func defaultWorkers() int { return runtime.NumCPU() }
