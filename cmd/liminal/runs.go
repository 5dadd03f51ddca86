package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/runstore"
)

func newRunsCmd(g *globals) *cobra.Command {
	var state string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runs [PIPELINE]",
		Short: "Show the run history the scheduler recorded",
		Long: `List the runs recorded under --state (by 'liminal scheduler'), newest first:
run id, pipeline, trigger (schedule, catchup, manual), status (queued, running,
succeeded, failed, cancelled, skipped), start, duration, rows out and error.
It reads the history while a scheduler is writing it.`,
		Example: "  liminal runs\n  liminal runs nightly --limit 5 --json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return exit(exitInvalid, fmt.Errorf("--limit must not be negative"))
			}
			pipeline := ""
			if len(args) == 1 {
				pipeline = args[0]
			}
			var recs []runstore.Record
			if _, err := os.Stat(filepath.Join(state, runstore.FileName)); err == nil {
				st, err := runstore.OpenShared(state)
				if err != nil {
					return exit(exitFailed, err)
				}
				defer st.Close()
				if recs, err = st.List(pipeline, limit); err != nil {
					return exit(exitFailed, err)
				}
			} else if !os.IsNotExist(err) {
				return exit(exitFailed, err)
			}
			if asJSON {
				if recs == nil {
					recs = []runstore.Record{}
				}
				return printJSON(g.stdout, map[string]any{"state": state, "runs": recs})
			}
			if len(recs) == 0 {
				fmt.Fprintf(g.stdout, "no runs recorded in %s\n", state)
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN ID\tPIPELINE\tTRIGGER\tSTATUS\tSTARTED\tDURATION\tROWS OUT\tERROR")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.RunID, r.Pipeline, r.Trigger, r.Status,
					r.StartedAt.UTC().Format("2006-01-02 15:04:05Z"), r.Duration(now).Round(100*time.Millisecond), r.RowsOut, oneLine(r.Error, 80))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", defaultStateDir(), "state directory holding the run history (runs.db); also $LIMINAL_STATE")
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many runs (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as one JSON object, the last line of stdout")
	return cmd
}

// oneLine shortens s to its first line and at most n runes.
func oneLine(s string, n int) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	} else if cut {
		return s + " …"
	}
	return s
}
