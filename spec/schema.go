package spec

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"
)

// SchemaJSON is the JSON Schema (draft 2020-12) of the spec format, as
// committed in liminal.schema.json. It equals the output of JSONSchema; a
// golden test keeps the two in step (go test ./spec -run TestSchemaGolden
// -rewrite regenerates the file).
//
//go:embed liminal.schema.json
var SchemaJSON []byte

// SchemaID is the $id of the JSON Schema.
const SchemaID = "https://github.com/liminal-data/liminal/spec/liminal.schema.json"

// interpolatedDef names the schema of a string holding ${VAR} references.
const interpolatedDef = "Interpolated"

// JSONSchema generates the JSON Schema (draft 2020-12) of the spec file
// format from the Go types, as indented JSON ending in a newline.
//
// The schema describes the file as written, before interpolation: wherever
// it constrains a scalar (an enum, a pattern, a minimum, an integer type) it
// also accepts a string holding a ${VAR} reference. It checks shapes, enums,
// names and required fields; cross references, files and cron syntax are
// checked only by Load and Parse, which also accept null for absent values
// and numbers or booleans where strings are expected.
func JSONSchema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:   "yaml",
		ExpandedStruct: true,
		LookupComment:  schemaComment,
	}
	s := r.Reflect(&Spec{})
	s.ID = SchemaID
	s.Title = "Liminal spec"
	if err := refineSchema(s); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	return append(data, '\n'), nil
}

// schemaComments are the descriptions of the types and fields in the
// schema, keyed by "Type" and "Type.Field".
var schemaComments = map[string]string{
	"Spec":                    "A Liminal spec: named sources and sinks, the pipelines whose tasks move data between them, and services.",
	"Spec.Name":               "Name of the spec.",
	"Spec.Sources":            "Inputs, keyed by the SQL table name tasks read them as.",
	"Spec.Sinks":              "Outputs, keyed by the name tasks write them with.",
	"Spec.Pipelines":          "Pipelines: ordered lists of tasks run on demand or on a schedule.",
	"Spec.Services":           "Long-running services.",
	"Source":                  "A named input.",
	"Source.URI":              "Local path, directory or glob (relative to the spec file), or a connector URL.",
	"Source.Format":           "File format; empty lets the connector infer it.",
	"Source.Options":          "Connector options, such as csv delim or header.",
	"Source.SecretEnv":        "Environment variable that holds the password or token.",
	"Source.SecretFile":       "File holding the password or token, relative to the spec file.",
	"Sink":                    "A named output.",
	"Sink.URI":                "Local path (relative to the spec file) or a connector URL.",
	"Sink.Format":             "File format; empty lets the connector infer it.",
	"Sink.Mode":               "What to do when the output exists; empty means error.",
	"Sink.PartitionBy":        "Columns of hive-style output partitioning.",
	"Sink.Compression":        "Parquet compression codec (parquet sinks only).",
	"Sink.RowGroupSize":       "Parquet row group size in rows; 0 picks the default (parquet sinks only).",
	"Sink.Options":            "Connector options.",
	"Sink.SecretEnv":          "Environment variable that holds the password or token.",
	"Sink.SecretFile":         "File holding the password or token, relative to the spec file.",
	"Sink.KeyColumns":         "Key columns of an upsert sink.",
	"Pipeline":                "A named, ordered list of tasks.",
	"Pipeline.Pipeline":       "Name of the pipeline, unique within the spec.",
	"Pipeline.Schedule":       "Cron schedule: five fields (minute hour day-of-month month day-of-week) or a macro such as @daily.",
	"Pipeline.Tasks":          "Tasks, run in order.",
	"Task":                    "One step of a pipeline. Exactly one of sql and sql_file is set.",
	"Task.Task":               "Name of the task, unique within the pipeline.",
	"Task.Type":               "Kind of task.",
	"Task.SQL":                "Query text.",
	"Task.SQLFile":            "File holding the query, relative to the spec file.",
	"Task.Sources":            "Names of the sources the query reads; empty means all sources.",
	"Task.Sink":               "Name of the sink the result is written to.",
	"Task.Partition":          "How the planner splits the task into parallel work.",
	"Task.Input":              "batch_inference: the source or earlier sql task whose rows are scored.",
	"Task.Model":              "batch_inference: the model that scores the input.",
	"Task.Output":             "batch_inference: which columns the result has.",
	"Model":                   "A model file and how its inputs bind to columns.",
	"Model.Format":            "Model format; empty detects it from the file.",
	"Model.Path":              "Model file or MLflow model directory, relative to the spec file.",
	"Model.Features":          "Input columns feeding the model's inputs in model order; empty binds by the names stored in the model.",
	"Model.Runtime":           "Path of libonnxruntime (onnx models); default LIMINAL_ONNXRUNTIME_LIB or the search path.",
	"Model.Command":           "Program and arguments of a command model: Arrow IPC batches on stdin, scored batches on stdout.",
	"Model.Env":               "Environment variables added for a command model.",
	"Model.Timeout":           "Longest time one batch of a command model may take, such as 30s or 10m; default 10m.",
	"Model.Inputs":            "Columns a command model receives; empty means all.",
	"Model.Outputs":           "Output columns of a command model, in order.",
	"Model.Threads":           "Threads one model call may use (onnx); 0 means one.",
	"ModelOutput":             "One output column of a command model.",
	"ModelOutput.Name":        "Column name.",
	"ModelOutput.Type":        "Column type.",
	"Output":                  "Columns of a batch_inference result.",
	"Output.Columns":          "Input columns passed through next to the predictions; empty passes all.",
	"Output.Prediction":       "Name of the prediction column; default prediction.",
	"Output.Probabilities":    "Names of the per-class probability columns of a multi-class model; default probability_0, probability_1, ...",
	"Partition":               "How the planner splits a task into parallel work.",
	"Partition.Source":        "The input that is split, one of the task's sources; empty lets the planner pick the largest.",
	"Partition.By":            "Split strategy; empty means auto.",
	"Partition.TargetRows":    "Wanted rows per partition; 0 means no target.",
	"Partition.TargetBytes":   "Wanted input bytes per partition; 0 means no target.",
	"Partition.MaxPartitions": "Largest number of partitions; 0 means no limit.",
	"Task.DependsOn":          "Tasks that must succeed first; their results can be read as tables of their names.",
	"Task.Retries":            "Retries of a failed partition (transient errors); default 2.",
	"Task.RetryDelay":         "First wait before a retry, such as 10s; it doubles each time.",
	"Task.Timeout":            "Longest the task may run, such as 30m.",
	"Task.Checks":             "Data checks on the task's output, evaluated before commit.",
	"Task.Command":            "command tasks: the program and its arguments.",
	"Task.Env":                "command and spark tasks: environment variables added.",
	"Task.Spark":              "spark tasks: the application run with spark-submit.",
	"Check":                   "A data check on a task's output.",
	"Check.Name":              "Name of the check in results.",
	"Check.Type":              "Kind of check.",
	"Check.Columns":           "Checked columns.",
	"Check.Min":               "row_count: fewest rows allowed.",
	"Check.Max":               "row_count: most rows allowed.",
	"Check.Values":            "accepted_values: the allowed values.",
	"Check.To":                "relationships: the source or task the column references.",
	"Check.Field":             "relationships: the referenced column.",
	"Check.SQL":               "sql: a query over table output whose rows are failures.",
	"Check.Severity":          "error (default) blocks the commit; warn only alerts.",
	"Spark":                   "A Spark application run with spark-submit.",
	"Spark.Application":       "Jar or Python file, relative to the spec file.",
	"Spark.Class":             "Main class of a jar application.",
	"Spark.Master":            "Spark master; default local[*].",
	"Spark.Conf":              "--conf settings.",
	"Spark.Args":              "Arguments of the application.",
	"Spark.SparkSubmit":       "The spark-submit program; default from PATH or SPARK_HOME.",
	"Pipeline.Timezone":       "IANA time zone of the schedule; default UTC.",
	"Pipeline.Catchup":        "Run the schedule's missed runs instead of skipping them.",
	"Pipeline.MaxActiveRuns":  "Most runs of the pipeline at once; default 1.",
	"Pipeline.SLA":            "Longest a run may take before an sla_miss alert, such as 45m.",
	"Pipeline.Alerts":         "Notifications on run events.",
	"Alert":                   "A notification to one channel on some run events.",
	"Alert.Name":              "Name of the alert in logs.",
	"Alert.On":                "Events: failure (default), success, sla_miss, check_failure.",
	"Alert.Webhook":           "POST the event as JSON.",
	"Alert.Slack":             "Post a message to a Slack-compatible incoming webhook.",
	"Alert.Email":             "Send the event by SMTP.",
	"Webhook":                 "An HTTP endpoint.",
	"Webhook.URL":             "The URL that receives a POST.",
	"Webhook.Headers":         "Headers added to the request.",
	"Email":                   "SMTP delivery.",
	"Email.SMTP":              "Server, host:port.",
	"Email.From":              "Sender address.",
	"Email.To":                "Recipients.",
	"Email.Username":          "User for SMTP authentication.",
	"Email.PasswordEnv":       "Environment variable holding the SMTP password.",
	"Email.TLS":               "starttls (default when offered) or none.",
	"Service":                 "A named long-running service.",
	"Service.Service":         "Name of the service, unique within the spec.",
	"Service.Type":            "Kind of service.",
	"Service.Model":           "The model the service serves.",
	"Service.Listen":          "Address to listen on, host:port.",
}

func schemaComment(t reflect.Type, field string) string {
	if field == "" {
		return schemaComments[t.Name()]
	}
	return schemaComments[t.Name()+"."+field]
}

// refineSchema adds what the Go types cannot say: enums, patterns,
// minimums, the sql/sql_file choice, and ${VAR} alternatives.
func refineSchema(s *jsonschema.Schema) error {
	defs := s.Definitions
	defs["Spec"] = s // the root, with ExpandedStruct; removed again below
	defer delete(defs, "Spec")
	defs[interpolatedDef] = &jsonschema.Schema{
		Type:        "string",
		Pattern:     `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`,
		Description: "A string with ${VAR} or ${VAR:-default} references, replaced by environment variables when the spec is loaded.",
	}

	var err error
	prop := func(def, name string) *jsonschema.Schema {
		d, ok := defs[def]
		if !ok {
			err = fmt.Errorf("no definition %s", def)
			return &jsonschema.Schema{}
		}
		p, ok := d.Properties.Get(name)
		if !ok {
			err = fmt.Errorf("no property %s.%s", def, name)
			return &jsonschema.Schema{}
		}
		return p
	}
	// enum sets the allowed values of a property; optional ones allow "".
	enum := func(def, name string, values []string, optional bool) {
		p := prop(def, name)
		p.Enum = nil
		if optional {
			p.Enum = append(p.Enum, "")
		}
		for _, v := range values {
			p.Enum = append(p.Enum, v)
		}
	}
	zero := json.Number("0")

	// Names.
	prop("Spec", "name").Pattern = namePatternText
	prop("Spec", "sources").PropertyNames = &jsonschema.Schema{Pattern: tablePatternText}
	prop("Spec", "sinks").PropertyNames = &jsonschema.Schema{Pattern: tablePatternText}
	prop("Pipeline", "pipeline").Pattern = namePatternText
	prop("Task", "task").Pattern = namePatternText
	prop("Service", "service").Pattern = namePatternText
	prop("Task", "sources").Items.Pattern = tablePatternText
	prop("Source", "secret_env").Pattern = envPatternText
	prop("Sink", "secret_env").Pattern = envPatternText

	// Enums.
	enum("Source", "format", formats, true)
	enum("Sink", "format", formats, true)
	enum("Sink", "mode", modes, true)
	enum("Sink", "compression", compressions, true)
	enum("Partition", "by", partitionBys, true)
	enum("Task", "type", taskTypes, false)
	enum("Service", "type", serviceTypes, false)
	enum("Model", "format", modelFormats, true)
	enum("ModelOutput", "type", outputTypes, false)

	// Numbers and lists.
	prop("Sink", "row_group_size").Minimum = zero
	prop("Partition", "target_rows").Minimum = zero
	prop("Partition", "target_bytes").Minimum = zero
	prop("Partition", "max_partitions").Minimum = zero
	one := uint64(1)
	prop("Pipeline", "tasks").MinItems = &one
	prop("Source", "uri").MinLength = &one
	prop("Sink", "uri").MinLength = &one
	pb := prop("Sink", "partition_by")
	pb.UniqueItems = true
	pb.Items.MinLength = &one

	// Option values may be any scalar; the loader reads them as text.
	for _, p := range []*jsonschema.Schema{prop("Source", "options"), prop("Sink", "options")} {
		p.AdditionalProperties = &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
			{Type: "string"}, {Type: "number"}, {Type: "boolean"},
		}}
	}

	// An sql task has exactly one of sql and sql_file; a batch_inference
	// task an input and a model.
	isType := func(typ string) *jsonschema.Schema {
		props := jsonschema.NewProperties()
		props.Set("type", &jsonschema.Schema{Const: typ})
		return &jsonschema.Schema{Properties: props, Required: []string{"type"}}
	}
	defs["Task"].AllOf = []*jsonschema.Schema{
		{If: isType("sql"), Then: &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			{Required: []string{"sql"}, Not: &jsonschema.Schema{Required: []string{"sql_file"}}},
			{Required: []string{"sql_file"}, Not: &jsonschema.Schema{Required: []string{"sql"}}},
		}}},
		{If: isType("batch_inference"), Then: &jsonschema.Schema{Required: []string{"input", "model", "sink"}}},
		{If: isType("command"), Then: &jsonschema.Schema{Required: []string{"command"}}},
		{If: isType("spark"), Then: &jsonschema.Schema{Required: []string{"spark"}}},
	}
	enum("Check", "type", checkTypes, false)
	enum("Check", "severity", severities, true)
	enum("Email", "tls", emailTLS, true)
	prop("Alert", "on").Items.Enum = nil
	for _, e := range alertEvents {
		prop("Alert", "on").Items.Enum = append(prop("Alert", "on").Items.Enum, e)
	}
	// At least one pipeline or service.
	for _, name := range []string{"pipelines", "services"} {
		props := jsonschema.NewProperties()
		props.Set(name, &jsonschema.Schema{MinItems: &one})
		s.AnyOf = append(s.AnyOf, &jsonschema.Schema{Required: []string{name}, Properties: props})
	}
	if err != nil {
		return err
	}

	// Every constrained scalar also accepts a ${VAR} reference.
	for _, name := range []string{"Spec", "Source", "Sink", "Pipeline", "Task", "Partition", "Service"} {
		for key, p := range defs[name].Properties.FromOldest() {
			defs[name].Properties.Set(key, allowInterpolation(p))
		}
		for _, list := range []string{"partition_by", "sources"} {
			if p, _ := defs[name].Properties.Get(list); p != nil && p.Items != nil {
				p.Items = allowInterpolation(p.Items)
			}
		}
	}
	return nil
}

// allowInterpolation returns p, or, when p constrains a scalar beyond being
// a string, p or an interpolated string.
func allowInterpolation(p *jsonschema.Schema) *jsonschema.Schema {
	constrained := p.Type == "integer" ||
		p.Type == "string" && (len(p.Enum) > 0 || p.Pattern != "" || p.MinLength != nil)
	if !constrained {
		return p
	}
	desc := p.Description
	inner := *p
	inner.Description = ""
	return &jsonschema.Schema{
		Description: desc,
		AnyOf:       []*jsonschema.Schema{&inner, {Ref: "#/$defs/" + interpolatedDef}},
	}
}
