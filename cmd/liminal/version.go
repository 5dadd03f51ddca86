package main

import (
	"database/sql"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of liminal and of its embedded DuckDB",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			duck := "unknown"
			if db, err := sql.Open("duckdb", ""); err == nil {
				_ = db.QueryRow("SELECT version()").Scan(&duck)
				db.Close()
			}
			if asJSON {
				return printJSON(g.stdout, map[string]string{"liminal": version, "duckdb": duck, "go": runtime.Version()})
			}
			fmt.Fprintf(g.stdout, "liminal %s (duckdb %s, %s %s/%s)\n", version, duck, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
