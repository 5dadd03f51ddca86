package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Name patterns. Source and sink names become SQL table names.
const (
	namePatternText  = `^[A-Za-z_][A-Za-z0-9_.-]*$`
	tablePatternText = `^[A-Za-z_][A-Za-z0-9_]*$`
	envPatternText   = `^[A-Za-z_][A-Za-z0-9_]*$`
)

var (
	namePattern  = regexp.MustCompile(namePatternText)
	tablePattern = regexp.MustCompile(tablePatternText)
	envPattern   = regexp.MustCompile(envPatternText)
)

// Allowed values of the enumerated fields. The empty string is allowed as
// well and means the default described on each field. The JSON Schema is
// built from these lists.
var (
	formats        = []string{"parquet", "csv"}
	modes          = []string{"append", "overwrite", "error", "upsert", "overwrite_partitions"}
	compressions   = []string{"snappy", "zstd", "gzip", "lz4", "uncompressed"}
	partitionBys   = []string{"auto", "files", "row_groups", "none"}
	taskTypes      = []string{"sql", "batch_inference", "command", "spark"}
	checkTypes     = []string{"row_count", "not_null", "unique", "accepted_values", "relationships", "sql"}
	severities     = []string{"error", "warn"}
	alertEvents    = []string{"failure", "success", "sla_miss", "check_failure"}
	emailTLS       = []string{"starttls", "none"}
	modelFormats   = []string{"xgboost", "lightgbm", "onnx", "linear", "mlflow", "command"}
	outputTypes    = []string{"double", "float", "bigint", "integer", "boolean", "varchar"}
	serviceTypes   = []string{"http_inference"}
	scheduleMacros = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
	cronFieldNames = []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
)

// maxSQLFileCheck bounds how much of an sql_file validation reads.
const maxSQLFileCheck = 1 << 20

// validator checks the semantic rules of a decoded spec.
type validator struct {
	s    *Spec
	bad  map[string]bool
	errs Errors
}

// errorf records a problem at path unless the decoder already reported the
// value at path, or an enclosing one, as malformed.
func (v *validator) errorf(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if v.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	v.errs = append(v.errs, v.s.Errorf(path, format, args...))
}

// required checks that the string field name of the value at parent is set.
func (v *validator) required(parent, name, value string) bool {
	path := joinPath(parent, name)
	switch {
	case strings.TrimSpace(value) != "":
		return true
	case v.s.has(path):
		v.errorf(path, "must not be empty")
	default:
		v.errorf(parent, "missing required field %q", name)
	}
	return false
}

// name checks a name field against pattern and, when seen is not nil, that
// it is unique; seen maps names to the path where they first appeared.
func (v *validator) name(path, what, value string, pattern *regexp.Regexp, seen map[string]string) {
	if !pattern.MatchString(value) {
		v.errorf(path, "invalid %s name %q: must match %s", what, value, pattern)
		return
	}
	if seen == nil {
		return
	}
	if first, dup := seen[value]; dup {
		v.errorf(path, "duplicate %s name %q (first defined at line %d)", what, value, v.s.Line(first))
		return
	}
	seen[value] = path
}

// enum checks that value is "" or one of allowed.
func (v *validator) enum(path, what, value string, allowed []string) {
	if value != "" && !slices.Contains(allowed, value) {
		v.errorf(path, "unknown %s %q (allowed: %s)", what, value, strings.Join(allowed, ", "))
	}
}

func (v *validator) nonNegative(path string, value int64) {
	if value < 0 {
		v.errorf(path, "must not be negative, got %d", value)
	}
}

func (v *validator) envName(path, value string) {
	if value != "" && !envPattern.MatchString(value) {
		v.errorf(path, "invalid environment variable name %q: must match %s", value, envPattern)
	}
}

// known checks that ref is a key of m, listing the keys otherwise.
func known[V any](v *validator, path, what string, ref string, m map[string]V) bool {
	if _, ok := m[ref]; ok {
		return true
	}
	if len(m) == 0 {
		v.errorf(path, "unknown %s %q (no %ss are defined)", what, ref, what)
	} else {
		v.errorf(path, "unknown %s %q (known: %s)", what, ref, listNames(sortedKeys(m)))
	}
	return false
}

func (v *validator) validate() {
	s := v.s
	if v.required("", "name", s.Name) && !namePattern.MatchString(s.Name) {
		v.errorf("name", "invalid name %q: must match %s", s.Name, namePattern)
	}
	for _, name := range sortedKeys(s.Sources) {
		v.source(joinPath("sources", name), name, s.Sources[name])
	}
	for _, name := range sortedKeys(s.Sinks) {
		v.sink(joinPath("sinks", name), name, s.Sinks[name])
	}
	if len(s.Pipelines) == 0 && len(s.Services) == 0 {
		v.errorf("", "spec defines no pipelines and no services; add at least one")
	}
	pipelines := map[string]string{}
	for i, p := range s.Pipelines {
		v.pipeline(indexPath("pipelines", i), p, pipelines)
	}
	services := map[string]string{}
	for i, svc := range s.Services {
		v.service(indexPath("services", i), svc, services)
	}
}

func (v *validator) source(path, name string, src Source) {
	v.name(path, "source", name, tablePattern, nil)
	v.required(path, "uri", src.URI)
	v.enum(joinPath(path, "format"), "format", src.Format, formats)
	v.envName(joinPath(path, "secret_env"), src.SecretEnv)
	v.secretFile(path, src.SecretEnv, src.SecretFile)
}

// secretFile checks that at most one secret source is named and that a
// secret file can be read (without reading it into any message).
func (v *validator) secretFile(path, env, file string) {
	if file == "" {
		return
	}
	p := joinPath(path, "secret_file")
	if env != "" {
		v.errorf(p, "secret_env and secret_file are mutually exclusive; set only one")
		return
	}
	f, err := os.Open(v.s.resolve(file))
	if err != nil {
		v.errorf(p, "secret file %s: %s", v.s.resolve(file), errText(err))
		return
	}
	f.Close()
}

func (v *validator) sink(path, name string, sink Sink) {
	v.name(path, "sink", name, tablePattern, nil)
	v.required(path, "uri", sink.URI)
	v.enum(joinPath(path, "format"), "format", sink.Format, formats)
	v.enum(joinPath(path, "mode"), "mode", sink.Mode, modes)
	v.enum(joinPath(path, "compression"), "compression", sink.Compression, compressions)
	v.nonNegative(joinPath(path, "row_group_size"), sink.RowGroupSize)
	v.envName(joinPath(path, "secret_env"), sink.SecretEnv)
	v.secretFile(path, sink.SecretEnv, sink.SecretFile)
	if sink.Mode == "upsert" && len(sink.KeyColumns) == 0 {
		v.errorf(joinPath(path, "mode"), "mode upsert needs key_columns")
	}
	if len(sink.KeyColumns) > 0 && sink.Mode != "upsert" {
		v.errorf(joinPath(path, "key_columns"), "key_columns apply only to mode upsert")
	}
	if sink.Mode == "overwrite_partitions" && len(sink.PartitionBy) == 0 {
		v.errorf(joinPath(path, "mode"), "mode overwrite_partitions needs partition_by")
	}
	seen := map[string]bool{}
	for i, col := range sink.PartitionBy {
		p := indexPath(joinPath(path, "partition_by"), i)
		switch {
		case strings.TrimSpace(col) == "":
			v.errorf(p, "must not be empty")
		case seen[col]:
			v.errorf(p, "duplicate partition column %q", col)
		}
		seen[col] = true
	}
	if !isParquet(sink) {
		why := "the sink is not parquet (set format: parquet)"
		if sink.Format != "" {
			why = fmt.Sprintf("the sink format is %s", sink.Format)
		}
		if sink.Compression != "" {
			v.errorf(joinPath(path, "compression"), "compression applies only to parquet sinks, and %s", why)
		}
		if sink.RowGroupSize != 0 {
			v.errorf(joinPath(path, "row_group_size"), "row_group_size applies only to parquet sinks, and %s", why)
		}
	}
}

// isParquet reports whether a sink writes parquet: its format says so, or
// it has no format and its URI ends in .parquet.
func isParquet(sink Sink) bool {
	if sink.Format != "" {
		return sink.Format == "parquet"
	}
	uri, _, _ := strings.Cut(sink.URI, "?")
	return strings.HasSuffix(strings.ToLower(uri), ".parquet")
}

func (v *validator) pipeline(path string, p Pipeline, seen map[string]string) {
	if v.required(path, "pipeline", p.Pipeline) {
		v.name(joinPath(path, "pipeline"), "pipeline", p.Pipeline, namePattern, seen)
	}
	if p.Schedule != "" {
		if msg := checkSchedule(p.Schedule); msg != "" {
			v.errorf(joinPath(path, "schedule"), "%s", msg)
		}
	}
	tasksPath := joinPath(path, "tasks")
	if len(p.Tasks) == 0 {
		if v.s.has(tasksPath) {
			v.errorf(tasksPath, "a pipeline needs at least one task")
		} else {
			v.errorf(path, "missing required field %q", "tasks")
		}
	}
	tasks := map[string]string{}
	types := map[string]string{}
	chained := map[string]bool{}
	all := map[string]string{}
	for _, t := range p.Tasks {
		if t.Type == "batch_inference" && t.Input != "" {
			chained[t.Input] = true
		}
		for _, d := range t.DependsOn {
			chained[d] = true // read by a dependent: needs no sink of its own
		}
		if t.Task != "" {
			all[t.Task] = t.Type
		}
	}
	for i, t := range p.Tasks {
		v.task(indexPath(tasksPath, i), t, tasks, types, chained[t.Task])
		if t.Task != "" {
			types[t.Task] = t.Type
		}
		for j, d := range t.DependsOn {
			dp := indexPath(joinPath(indexPath(tasksPath, i), "depends_on"), j)
			switch _, ok := all[d]; {
			case d == t.Task:
				v.errorf(dp, "task %q depends on itself", d)
			case !ok:
				names := sortedKeys(all)
				v.errorf(dp, "unknown task %q (known: %s)%s", d, listNames(names), didYouMean(suggest(d, names)))
			}
		}
	}
	if cycle := dependencyCycle(p.Tasks); len(cycle) > 0 {
		v.errorf(tasksPath, "tasks depend on each other in a cycle: %s", strings.Join(cycle, " -> "))
	}
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil {
			v.errorf(joinPath(path, "timezone"), "unknown time zone %q (an IANA name such as Europe/Berlin)", p.Timezone)
		}
	}
	v.nonNegative(joinPath(path, "max_active_runs"), int64(p.MaxActiveRuns))
	v.duration(joinPath(path, "sla"), p.SLA)
	for i, a := range p.Alerts {
		v.alert(indexPath(joinPath(path, "alerts"), i), a)
	}
}

// dependencyCycle returns the tasks of a depends_on cycle (first task
// repeated at the end), or nil. Input chaining counts as a dependency.
func dependencyCycle(tasks []Task) []string {
	deps := map[string][]string{}
	for _, t := range tasks {
		deps[t.Task] = append(slices.Clone(t.DependsOn), t.Input)
	}
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		if _, ok := deps[n]; !ok {
			return nil
		}
		switch state[n] {
		case active:
			i := slices.Index(stack, n)
			return append(slices.Clone(stack[i:]), n)
		case done:
			return nil
		}
		state[n] = active
		stack = append(stack, n)
		for _, d := range deps[n] {
			if d != n {
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, t := range tasks {
		if c := visit(t.Task); c != nil {
			return c
		}
	}
	return nil
}

// duration checks an optional positive duration such as "30s" or "10m".
func (v *validator) duration(path, value string) {
	if value == "" {
		return
	}
	if d, err := time.ParseDuration(value); err != nil || d <= 0 {
		v.errorf(path, "invalid duration %q (examples: 30s, 10m, 2h)", value)
	}
}

func (v *validator) alert(path string, a Alert) {
	for i, e := range a.On {
		v.enum(indexPath(joinPath(path, "on"), i), "alert event", e, alertEvents)
	}
	n := 0
	if a.Webhook != nil {
		n++
		v.url(joinPath(joinPath(path, "webhook"), "url"), a.Webhook.URL)
	}
	if a.Slack != nil {
		n++
		v.url(joinPath(joinPath(path, "slack"), "url"), a.Slack.URL)
	}
	if a.Email != nil {
		n++
		ep := joinPath(path, "email")
		if v.required(ep, "smtp", a.Email.SMTP) {
			if _, _, err := net.SplitHostPort(a.Email.SMTP); err != nil {
				v.errorf(joinPath(ep, "smtp"), "want host:port, got %q", a.Email.SMTP)
			}
		}
		v.required(ep, "from", a.Email.From)
		if len(a.Email.To) == 0 {
			v.errorf(ep, "missing required field %q", "to")
		}
		v.envName(joinPath(ep, "password_env"), a.Email.PasswordEnv)
		v.enum(joinPath(ep, "tls"), "tls mode", a.Email.TLS, emailTLS)
	}
	if n != 1 {
		v.errorf(path, "an alert needs exactly one of webhook, slack or email (has %d)", n)
	}
}

func (v *validator) url(path, u string) {
	if u == "" {
		v.errorf(path, "missing required field %q", "url")
		return
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		v.errorf(path, "want an http:// or https:// URL, got %q", u)
	}
}

// check validates one data check: the fields its type needs.
func (v *validator) check(path string, c Check) {
	if !v.required(path, "type", c.Type) {
		return
	}
	if !slices.Contains(checkTypes, c.Type) {
		v.errorf(joinPath(path, "type"), "unknown check type %q (allowed: %s)", c.Type, strings.Join(checkTypes, ", "))
		return
	}
	v.enum(joinPath(path, "severity"), "severity", c.Severity, severities)
	needCols := func(one bool) {
		switch {
		case len(c.Columns) == 0:
			v.errorf(path, "a %s check needs columns: [...]", c.Type)
		case one && len(c.Columns) != 1:
			v.errorf(joinPath(path, "columns"), "the %s check takes exactly one column", c.Type)
		}
	}
	switch c.Type {
	case "row_count":
		if c.Min == nil && c.Max == nil {
			v.errorf(path, "a row_count check needs min, max or both")
		}
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			v.errorf(joinPath(path, "min"), "min %d is above max %d", *c.Min, *c.Max)
		}
	case "not_null", "unique":
		needCols(false)
	case "accepted_values":
		needCols(true)
		if len(c.Values) == 0 {
			v.errorf(path, "an accepted_values check needs values: [...]")
		}
	case "relationships":
		needCols(true)
		v.required(path, "to", c.To)
		v.required(path, "field", c.Field)
	case "sql":
		v.required(path, "sql", c.SQL)
	}
}

func (v *validator) task(path string, t Task, seen, earlier map[string]string, chained bool) {
	s := v.s
	if v.required(path, "task", t.Task) {
		v.name(joinPath(path, "task"), "task", t.Task, namePattern, seen)
	}
	isSQL := t.Type == "sql"
	if v.required(path, "type", t.Type) && !slices.Contains(taskTypes, t.Type) {
		v.errorf(joinPath(path, "type"), "task type %q is not supported (supported: %s)", t.Type, strings.Join(taskTypes, ", "))
	}
	if t.Type == "" {
		isSQL = true // most likely an sql task with the type left out
	}
	v.duration(joinPath(path, "retry_delay"), t.RetryDelay)
	v.duration(joinPath(path, "timeout"), t.Timeout)
	if t.Retries != nil {
		v.nonNegative(joinPath(path, "retries"), int64(*t.Retries))
	}
	for i, c := range t.Checks {
		v.check(indexPath(joinPath(path, "checks"), i), c)
	}
	if t.Type == "batch_inference" {
		v.inference(path, t, earlier)
		return
	}
	if t.Type == "command" || t.Type == "spark" {
		v.program(path, t)
		return
	}
	for _, f := range []string{"command", "spark", "env"} {
		if s.has(joinPath(path, f)) {
			v.errorf(joinPath(path, f), "%s applies only to command and spark tasks", f)
		}
	}
	for _, f := range []string{"input", "model", "output"} {
		if s.has(joinPath(path, f)) {
			v.errorf(joinPath(path, f), "%s applies only to batch_inference tasks", f)
		}
	}

	sqlPath, filePath := joinPath(path, "sql"), joinPath(path, "sql_file")
	switch {
	case !isSQL:
	case t.SQL != "" && t.SQLFile != "":
		v.errorf(filePath, "sql and sql_file are mutually exclusive; set only one")
	case t.SQL != "":
		if strings.TrimSpace(t.SQL) == "" {
			v.errorf(sqlPath, "must not be empty")
		}
	case t.SQLFile != "":
		if msg := checkSQLFile(s.resolve(t.SQLFile)); msg != "" {
			v.errorf(filePath, "%s", msg)
		}
	case s.has(sqlPath):
		v.errorf(sqlPath, "must not be empty")
	case s.has(filePath):
		v.errorf(filePath, "must not be empty")
	default:
		v.errorf(path, "one of sql or sql_file is required")
	}

	checkSources := !v.bad["sources"]
	listed := map[string]bool{}
	for i, name := range t.Sources {
		p := indexPath(joinPath(path, "sources"), i)
		switch {
		case listed[name]:
			v.errorf(p, "duplicate source %q", name)
		case slices.Contains(t.DependsOn, name):
			// the result of a task this one depends on, read by its name
		case checkSources:
			known(v, p, "source", name, s.Sources)
		}
		listed[name] = true
	}

	if isSQL && !chained {
		v.required(path, "sink", t.Sink)
	}
	if t.Sink != "" && !v.bad["sinks"] {
		known(v, joinPath(path, "sink"), "sink", t.Sink, s.Sinks)
	}

	v.partition(joinPath(path, "partition"), t, checkSources)
}

// program checks a command or spark task: what it runs, and no SQL.
func (v *validator) program(path string, t Task) {
	for _, f := range []string{"sql", "sql_file", "input", "model", "output", "checks"} {
		if v.s.has(joinPath(path, f)) {
			v.errorf(joinPath(path, f), "a %s task runs a program; %s does not apply", t.Type, f)
		}
	}
	switch t.Type {
	case "command":
		if len(t.Command) == 0 {
			v.errorf(path, "a command task needs command: [program, args...]")
		}
		if v.s.has(joinPath(path, "spark")) {
			v.errorf(joinPath(path, "spark"), "spark applies only to spark tasks")
		}
	case "spark":
		if t.Spark == nil {
			v.errorf(path, "a spark task needs spark: {application: ...}")
			break
		}
		sp := joinPath(path, "spark")
		if v.required(sp, "application", t.Spark.Application) {
			if _, err := os.Stat(v.s.resolve(t.Spark.Application)); err != nil {
				v.errorf(joinPath(sp, "application"), "application %s: %s", v.s.resolve(t.Spark.Application), errText(err))
			}
		}
	}
}

// inference checks a batch_inference task: its input is a source or an
// earlier sql task, it has a model and a sink, and no SQL of its own.
func (v *validator) inference(path string, t Task, earlier map[string]string) {
	s := v.s
	for _, f := range []string{"sql", "sql_file", "sources"} {
		if s.has(joinPath(path, f)) {
			v.errorf(joinPath(path, f), "a batch_inference task reads its input, not %s (score the result of an sql task by naming it as input)", f)
		}
	}
	inPath := joinPath(path, "input")
	if v.required(path, "input", t.Input) && !v.bad["sources"] {
		typ, isTask := earlier[t.Input]
		_, isSource := s.Sources[t.Input]
		switch {
		case isTask && typ != "sql" && typ != "":
			v.errorf(inPath, "input %q is a %s task; only sources and sql tasks can be scored", t.Input, typ)
		case isTask || isSource:
		default:
			names := append(sortedKeys(s.Sources), sortedKeys(earlier)...)
			v.errorf(inPath, "unknown input %q: not a source nor an earlier task (known: %s)%s", t.Input, listNames(names), didYouMean(suggest(t.Input, names)))
		}
	}
	if v.required(path, "sink", t.Sink) && !v.bad["sinks"] {
		known(v, joinPath(path, "sink"), "sink", t.Sink, s.Sinks)
	}
	if t.Model == nil {
		if !v.bad[joinPath(path, "model")] {
			v.errorf(path, "missing required field %q", "model")
		}
	} else {
		v.model(joinPath(path, "model"), *t.Model)
	}
	if o := t.Output; o != nil {
		seen := map[string]bool{}
		for i, c := range o.Columns {
			p := indexPath(joinPath(joinPath(path, "output"), "columns"), i)
			switch {
			case strings.TrimSpace(c) == "":
				v.errorf(p, "must not be empty")
			case seen[c]:
				v.errorf(p, "duplicate column %q", c)
			}
			seen[c] = true
		}
		for i, c := range o.Probabilities {
			p := indexPath(joinPath(joinPath(path, "output"), "probabilities"), i)
			if strings.TrimSpace(c) == "" {
				v.errorf(p, "must not be empty")
			}
		}
	}
	v.partition(joinPath(path, "partition"), Task{Partition: t.Partition}, false)
}

// model checks a model block: a known format, a file that exists, a
// command for command models, valid timeouts and output types.
func (v *validator) model(path string, m Model) {
	v.enum(joinPath(path, "format"), "model format", m.Format, modelFormats)
	if m.Format == "command" {
		if len(m.Command) == 0 {
			v.errorf(path, "a command model needs command: [program, args...]")
		}
	} else if v.required(path, "path", m.Path) {
		if _, err := os.Stat(v.s.resolve(m.Path)); err != nil {
			v.errorf(joinPath(path, "path"), "model file %s: %s", v.s.resolve(m.Path), errText(err))
		}
	}
	if m.Timeout != "" {
		if d, err := time.ParseDuration(m.Timeout); err != nil || d <= 0 {
			v.errorf(joinPath(path, "timeout"), "invalid duration %q (examples: 30s, 10m)", m.Timeout)
		}
	}
	for i, o := range m.Outputs {
		p := indexPath(joinPath(path, "outputs"), i)
		if strings.TrimSpace(o.Name) == "" {
			v.errorf(p, "missing required field %q", "name")
		}
		v.enum(joinPath(p, "type"), "output type", o.Type, outputTypes)
	}
	v.nonNegative(joinPath(path, "threads"), int64(m.Threads))
}

// errText is an os error without the path it repeats.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (v *validator) partition(path string, t Task, checkSources bool) {
	p := t.Partition
	if p.Source != "" && checkSources {
		srcPath := joinPath(path, "source")
		switch {
		case len(t.Sources) == 0:
			known(v, srcPath, "source", p.Source, v.s.Sources)
		case !slices.Contains(t.Sources, p.Source):
			v.errorf(srcPath, "partition source %q is not one of the task's sources (%s)", p.Source, listNames(t.Sources))
		}
	}
	v.enum(joinPath(path, "by"), "partition strategy", p.By, partitionBys)
	v.nonNegative(joinPath(path, "target_rows"), p.TargetRows)
	v.nonNegative(joinPath(path, "target_bytes"), p.TargetBytes)
	v.nonNegative(joinPath(path, "max_partitions"), int64(p.MaxPartitions))
}

func (v *validator) service(path string, svc Service, seen map[string]string) {
	if v.required(path, "service", svc.Service) {
		v.name(joinPath(path, "service"), "service", svc.Service, namePattern, seen)
	}
	if v.required(path, "type", svc.Type) && !slices.Contains(serviceTypes, svc.Type) {
		v.errorf(joinPath(path, "type"), "unknown service type %q (known: %s)", svc.Type, strings.Join(serviceTypes, ", "))
	}
	if svc.Model != nil { // required by liminal serve, not by validation
		v.model(joinPath(path, "model"), *svc.Model)
	}
	if svc.Listen != "" {
		if msg := checkListen(svc.Listen); msg != "" {
			v.errorf(joinPath(path, "listen"), "%s", msg)
		}
	}
}

// maxListedNames bounds the names listed in one message.
const maxListedNames = 20

// listNames joins names for a message, eliding all but the first
// maxListedNames.
func listNames(names []string) string {
	if len(names) <= maxListedNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, and %d more", strings.Join(names[:maxListedNames], ", "), len(names)-maxListedNames)
}

// checkSQLFile returns why the sql file at path is unusable, or "" when it
// is a regular file holding some text.
func checkSQLFile(path string) string {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("sql file %q does not exist", path)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Sprintf("sql file %q: %v", path, err)
	case !info.Mode().IsRegular():
		return fmt.Sprintf("sql file %q is not a regular file", path)
	case info.Size() == 0:
		return fmt.Sprintf("sql file %q is empty", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("sql file %q: %v", path, err)
	}
	defer f.Close()
	// Look for some text in the first MiB; a longer file of blanks is
	// unusual enough to be left to the query planner.
	data, err := io.ReadAll(io.LimitReader(f, maxSQLFileCheck))
	if err != nil {
		return fmt.Sprintf("sql file %q: %v", path, err)
	}
	if int64(len(data)) < maxSQLFileCheck && strings.TrimSpace(string(data)) == "" {
		return fmt.Sprintf("sql file %q holds only white space", path)
	}
	return ""
}

// checkSchedule returns why a cron schedule is malformed, or "". Only the
// shape is checked: a macro, or five fields made of the characters cron
// uses. Ranges and names are left to the scheduler.
func checkSchedule(sched string) string {
	if strings.HasPrefix(sched, "@") {
		if slices.Contains(scheduleMacros, sched) {
			return ""
		}
		return fmt.Sprintf("unknown schedule %q (allowed macros: %s)", sched, strings.Join(scheduleMacros, ", "))
	}
	fields := strings.Fields(sched)
	if len(fields) != 5 {
		return fmt.Sprintf("schedule %q has %d fields, want 5 (%s) or a macro such as @daily", sched, len(fields), strings.Join(cronFieldNames, " "))
	}
	for i, f := range fields {
		names := i >= 3 // months and weekdays may be written as JAN or MON
		for _, r := range f {
			ok := r >= '0' && r <= '9' || strings.ContainsRune("*,-/", r) || names && unicode.IsLetter(r) && r < unicode.MaxASCII
			if !ok {
				return fmt.Sprintf("schedule %q: invalid character %q in the %s field", sched, r, cronFieldNames[i])
			}
		}
	}
	return ""
}

// checkListen returns why a listen address is malformed, or "".
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid listen address %q: want host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("invalid listen address %q: port must be a number from 0 to 65535", addr)
	}
	return ""
}

func didYouMean(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", s)
}
