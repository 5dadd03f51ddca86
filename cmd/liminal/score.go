package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/coordinator"
	"github.com/liminal-data/liminal/partition"
	"github.com/liminal-data/liminal/spec"
)

func newScoreCmd(g *globals) *cobra.Command {
	var f runFlags
	var model, modelFormat, input, inputFormat, output, outFormat, mode, prediction, query, compression, runtime string
	var keep, features, probabilities, partitionBy []string
	cmd := &cobra.Command{
		Use:   "score --model PATH --input URI --output URI",
		Short: "Score a dataset with a model (ad-hoc batch inference)",
		Long: `Score every row of INPUT with a model and commit the rows, with their
predictions, to OUTPUT atomically — partitioned and in parallel, like sql.

The model's inputs bind to columns by the feature names stored in the model, or
to the columns named by --features in the model's order. Integer, float,
boolean and decimal columns convert; NULL is a missing value. --sql computes the
features first: a query over the input, which it reads as table "input".

Formats: xgboost (save_model JSON), lightgbm (save_model text), linear (JSON,
see the README), onnx (needs libonnxruntime), mlflow (a model directory) and
command (see liminal run; use a spec for command models). The format is
detected from the file when --model-format is not given.

A single-output model adds a "prediction" column; a multi-class model adds
"prediction" (the most probable class) and "probability_<k>" per class.`,
		Example: `  liminal score --model models/churn.json --input 'data/customers/*.parquet' \
      --output out/scores/ --keep customer_id --prediction churn_probability
  liminal score --model m.txt --input features.csv --output scores.parquet \
      --sql "SELECT id, age / 10.0 AS age10, income FROM input" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			if f.coordinator != "" {
				return exit(exitInvalid, fmt.Errorf("score runs in-process; on a cluster, run a spec with a batch_inference task (liminal run SPEC --coordinator ADDR)"))
			}
			for name, v := range map[string]string{"--model": model, "--input": input, "--output": output} {
				if v == "" {
					return exit(exitInvalid, fmt.Errorf("%s is needed", name))
				}
			}
			m, err := connectors.ParseMode(mode)
			if err != nil {
				return exit(exitInvalid, err)
			}
			if query == "" {
				query = "SELECT * FROM input"
			}
			return g.execute(cmd.Context(), f, "", "", func(ctx context.Context) ([]*coordinator.Task, error) {
				wd, _ := os.Getwd()
				src, err := connectors.OpenSource(ctx, connectors.SourceConfig{Name: "input", URI: input, Format: inputFormat, BaseDir: wd})
				if err != nil {
					return nil, fmt.Errorf("input: %w", err)
				}
				sk, err := connectors.OpenSink(ctx, connectors.SinkConfig{Name: "output", URI: output, Format: outFormat, Mode: m,
					PartitionBy: partitionBy, Compression: compression, BaseDir: wd,
					Protect: []string{connectors.LocalPath(input, wd)}, Force: f.force})
				if err != nil {
					return nil, exit(exitInvalid, fmt.Errorf("output: %w", err))
				}
				t := &coordinator.Task{Name: "score", Query: query, Sources: map[string]connectors.Source{"input": src}, Sink: sk,
					Driving: "input", Partition: partition.Options{TargetRows: f.targetRows, MaxPartitions: f.maxPartitions},
					Score: &coordinator.Score{Dir: wd, Origin: "--model",
						Model:  spec.Model{Format: modelFormat, Path: model, Features: features, Runtime: runtime},
						Output: spec.Output{Columns: keep, Prediction: prediction, Probabilities: probabilities}}}
				return []*coordinator.Task{t}, nil
			})
		},
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "model file or MLflow model directory")
	fl.StringVar(&modelFormat, "model-format", "", "xgboost, lightgbm, onnx, linear, mlflow (default: detected from the file)")
	fl.StringSliceVar(&features, "features", nil, "columns feeding the model's inputs, in the model's order (default: by the model's feature names)")
	fl.StringVar(&runtime, "onnxruntime", "", "path of libonnxruntime for onnx models (default: $LIMINAL_ONNXRUNTIME_LIB, then the search path)")
	fl.StringVar(&input, "input", "", "rows to score: a Parquet/CSV file, directory or glob")
	fl.StringVar(&inputFormat, "input-format", "", "input format, parquet or csv, when the extension does not tell")
	fl.StringVar(&query, "sql", "", `features query over the input, read as table "input" (default: SELECT * FROM input)`)
	fl.StringVar(&output, "output", "", "where the scored rows go: a directory, or a .parquet/.csv file")
	fl.StringVar(&outFormat, "format", "", "output format: parquet or csv (default: from the extension, else parquet)")
	fl.StringVar(&mode, "mode", "error", "when the output exists: append, overwrite or error")
	fl.StringSliceVar(&keep, "keep", nil, "input columns kept next to the predictions (default: all)")
	fl.StringVar(&prediction, "prediction", "", `name of the prediction column (default "prediction")`)
	fl.StringSliceVar(&probabilities, "probabilities", nil, "names of a multi-class model's probability columns (default probability_0, ...)")
	fl.StringSliceVar(&partitionBy, "partition-by", nil, "write Hive-style directories by these columns (directory outputs)")
	fl.StringVar(&compression, "compression", "", "parquet compression: snappy, zstd, gzip, lz4 or uncompressed")
	return cmd
}
