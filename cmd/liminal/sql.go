package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/partition"
)

func newSQLCmd(g *globals) *cobra.Command {
	var f runFlags
	var sources, sourceFormats []string
	var sink, mode, format, partitionSource, compression string
	var partitionBy []string
	cmd := &cobra.Command{
		Use:   "sql QUERY --source NAME=URI [--source NAME=URI ...] --sink URI",
		Short: "Run one ad-hoc SQL-ETL job",
		Long: `Run QUERY over the given sources, partitioned and in parallel, and commit the
result to the sink atomically. The query names each source by its NAME. A URI is
a local file, directory or glob of .parquet or .csv files.

A sink URI ending in .parquet or .csv is one file; anything else is a directory
of part files with a _SUCCESS manifest.`,
		Example: `  liminal sql "SELECT country, count(*) AS n FROM events GROUP BY country" \
      --source events='data/events/*.parquet' --sink out/by_country.csv
  liminal sql "SELECT * FROM e WHERE amount > 100" --source e=data/events \
      --sink out/big/ --mode overwrite --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if len(sources) == 0 {
				return exit(exitInvalid, fmt.Errorf("at least one --source NAME=URI is needed"))
			}
			if sink == "" {
				return exit(exitInvalid, fmt.Errorf("--sink URI is needed"))
			}
			m, err := connectors.ParseMode(mode)
			if err != nil {
				return exit(exitInvalid, err)
			}
			srcFmt := map[string]string{}
			for _, sf := range sourceFormats {
				n, v, ok := strings.Cut(sf, "=")
				if !ok {
					return exit(exitInvalid, fmt.Errorf("--source-format %q: want NAME=FORMAT", sf))
				}
				srcFmt[n] = v
			}
			if f.coordinator != "" {
				raw, err := sqlSpec(args[0], sources, srcFmt, sink, format, mode, partitionBy, compression, partitionSource, f.targetRows)
				if err != nil {
					return exit(exitInvalid, err)
				}
				if f.runID == "" {
					f.runID = coordinator.NewRunID()
				}
				f.targetRows = 0 // in the spec
				return g.remoteRun(cmd.Context(), f, sqlSpecName, raw, "")
			}
			return g.execute(cmd.Context(), f, "", "", func(ctx context.Context) ([]*coordinator.Task, error) {
				t := &coordinator.Task{Name: "query", Query: args[0], Sources: map[string]connectors.Source{}, Driving: partitionSource,
					Partition: partition.Options{TargetRows: f.targetRows, MaxPartitions: f.maxPartitions}}
				wd, _ := os.Getwd()
				for _, s := range sources {
					name, uri, ok := strings.Cut(s, "=")
					if !ok || name == "" || uri == "" {
						return nil, exit(exitInvalid, fmt.Errorf("--source %q: want NAME=URI", s))
					}
					if _, dup := t.Sources[name]; dup {
						return nil, exit(exitInvalid, fmt.Errorf("--source %s given twice", name))
					}
					src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: name, URI: uri, Format: srcFmt[name], BaseDir: wd})
					if err != nil {
						return nil, fmt.Errorf("source %s: %w", name, err)
					}
					t.Sources[name] = src
				}
				var protect []string
				for _, s := range sources {
					_, uri, _ := strings.Cut(s, "=")
					protect = append(protect, connectors.LocalPath(uri, wd))
				}
				sk, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "sink", URI: sink, Format: format, Mode: m,
					PartitionBy: partitionBy, Compression: compression, BaseDir: wd, Protect: protect, Force: f.force})
				if err != nil {
					return nil, exit(exitInvalid, fmt.Errorf("sink: %w", err))
				}
				t.Sink = sk
				return []*coordinator.Task{t}, nil
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringArrayVar(&sources, "source", nil, "a source as NAME=URI (repeatable); the query reads it as table NAME")
	cmd.Flags().StringArrayVar(&sourceFormats, "source-format", nil, "format of a source as NAME=parquet|csv, when its extension does not tell")
	cmd.Flags().StringVar(&sink, "sink", "", "where the result goes: a directory, or a .parquet/.csv file")
	cmd.Flags().StringVar(&mode, "mode", "error", "when the sink exists: append, overwrite or error")
	cmd.Flags().StringVar(&format, "format", "", "sink format: parquet or csv (default: from the extension, else parquet)")
	cmd.Flags().StringSliceVar(&partitionBy, "partition-by", nil, "write Hive-style directories by these columns (directory sinks)")
	cmd.Flags().StringVar(&compression, "compression", "", "parquet compression: snappy, zstd, gzip, lz4 or uncompressed")
	cmd.Flags().StringVar(&partitionSource, "partition-source", "", "the source to split (default: the largest the query reads)")
	return cmd
}
