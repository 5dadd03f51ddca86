package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/liminal-data/liminal/scheduler"
	"github.com/liminal-data/liminal/spec"
)

//go:embed airflow/dag.py.tmpl
var airflowTemplate string

var dagTemplate = template.Must(template.New("dag").Funcs(template.FuncMap{"py": pyString, "pylist": pyList}).Parse(airflowTemplate))

func newExportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export a spec's pipelines to another orchestrator",
	}
	cmd.AddCommand(newExportAirflowCmd(g))
	return cmd
}

type airflowFlags struct {
	pipeline, operator, image, output, dagID, specPath, binary, granularity, namespace, startDate string
	retries                                                                                       int
	retryDelay                                                                                    time.Duration
}

func newExportAirflowCmd(g *globals) *cobra.Command {
	var f airflowFlags
	cmd := &cobra.Command{
		Use:   "airflow SPEC",
		Short: "Write an Apache Airflow DAG that runs a pipeline",
		Long: `Write an Airflow DAG (a Python file) for one pipeline of SPEC: the pipeline's
schedule and timezone (a pendulum start date), catchup and max_active_runs, and
one Airflow task per Liminal task (--granularity task) running
'liminal run SPEC --pipeline P --task T', or one task running the whole pipeline
(--granularity pipeline). 'auto' (the default) picks task unless a task's result
is only read by another task (no sink of its own).

Dependencies: the tasks' depends_on when the pipeline uses it, otherwise the
order of the tasks (each after the previous one, as 'liminal run' runs them).

Each task runs with the Airflow run id (made file-name safe) as --run-id and
--skip-if-committed: a retried or cleared task whose output is already committed
exits 3, which Airflow records as skipped (skip_on_exit_code=3); downstream
tasks use trigger_rule none_failed so that they still run. The JSON result goes
to XCom: the last line of stdout (bash) or /airflow/xcom/return.json (kubernetes).
Checked with Airflow 2.10 (scripts/airflow.sh); the imports fall back to
Airflow 3's module paths.`,
		Example: "  liminal export airflow etl.yml --pipeline nightly --output dags/nightly.py\n" +
			"  liminal export airflow etl.yml --operator kubernetes --image registry/liminal:1.4 --spec-path /app/etl.yml",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := airflowDAG(args[0], f)
			if err != nil {
				return err
			}
			if f.output == "" || f.output == "-" {
				_, err := g.stdout.Write(src)
				return err
			}
			if err := os.WriteFile(f.output, src, 0o644); err != nil {
				return exit(exitFailed, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "", "pipeline to export (required when the spec has several)")
	cmd.Flags().StringVar(&f.operator, "operator", "bash", "Airflow operator: bash (BashOperator) or kubernetes (KubernetesPodOperator)")
	cmd.Flags().StringVar(&f.image, "image", "", "container image with liminal and the spec (--operator kubernetes)")
	cmd.Flags().StringVar(&f.namespace, "namespace", "", "Kubernetes namespace of the pods (default: the connection's)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "file to write (default: stdout)")
	cmd.Flags().StringVar(&f.dagID, "dag-id", "", "DAG id (default: <spec name>_<pipeline>)")
	cmd.Flags().StringVar(&f.specPath, "spec-path", "", "SPEC's path where the task runs (default: its absolute path for bash, as given for kubernetes)")
	cmd.Flags().StringVar(&f.binary, "liminal", "liminal", "the liminal command where the task runs")
	cmd.Flags().StringVar(&f.granularity, "granularity", "auto", "task (one Airflow task per Liminal task), pipeline (one for the whole pipeline) or auto")
	cmd.Flags().StringVar(&f.startDate, "start-date", "", "the DAG's start_date, YYYY-MM-DD in the pipeline's timezone (default: today)")
	cmd.Flags().IntVar(&f.retries, "retries", 2, "Airflow retries per task")
	cmd.Flags().DurationVar(&f.retryDelay, "retry-delay", 5*time.Minute, "Airflow delay between retries")
	return cmd
}

type dagTask struct {
	ID       string
	Var      string
	PodName  string
	Args     []string
	Upstream []string // Vars
}

type dagData struct {
	Generator, Spec, Pipeline, DagID, Schedule, TZ string
	Year, Month, Day                               int
	Catchup                                        bool
	MaxActiveRuns, Retries                         int
	RetryDelaySeconds                              int64
	Kubernetes                                     bool
	Image, Namespace, Binary                       string
	Tasks                                          []dagTask
	Edges                                          [][2]string
}

// airflowRunID makes Airflow's run id (scheduled__2026-01-01T00:00:00+00:00)
// safe in file names: liminal names output files after the run id.
const airflowRunID = `{{ run_id | replace(':', '') | replace('+', '') | replace('/', '_') | replace(' ', '_') }}`

var dagIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func airflowDAG(path string, f airflowFlags) ([]byte, error) {
	if f.operator != "bash" && f.operator != "kubernetes" {
		return nil, exit(exitInvalid, fmt.Errorf("--operator %q: want bash or kubernetes", f.operator))
	}
	if f.operator == "kubernetes" && f.image == "" {
		return nil, exit(exitInvalid, fmt.Errorf("--operator kubernetes needs --image"))
	}
	s, p, _, err := loadPipeline(path, f.pipeline)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return nil, err
		}
		return nil, exit(exitInvalid, err)
	}
	tz := p.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, exit(exitInvalid, fmt.Errorf("pipeline %s: unknown time zone %q", p.Pipeline, tz))
	}
	if p.Schedule != "" {
		if _, err := scheduler.Parse(p.Schedule, p.Timezone); err != nil {
			return nil, exit(exitInvalid, fmt.Errorf("pipeline %s: %w", p.Pipeline, err))
		}
	}
	start := time.Now().In(loc)
	if f.startDate != "" {
		if start, err = time.ParseInLocation("2006-01-02", f.startDate, loc); err != nil {
			return nil, exit(exitInvalid, fmt.Errorf("--start-date %q: want YYYY-MM-DD", f.startDate))
		}
	}
	specPath := f.specPath
	if specPath == "" {
		specPath = path
		if f.operator == "bash" {
			if abs, err := filepath.Abs(path); err == nil {
				specPath = abs
			}
		}
	}
	dagID := f.dagID
	if dagID == "" {
		dagID = dagIDUnsafe.ReplaceAllString(s.Name+"_"+p.Pipeline, "_")
	}
	steps, edges, err := airflowSteps(p, f.granularity)
	if err != nil {
		return nil, exit(exitInvalid, err)
	}
	d := dagData{Generator: "liminal export airflow", Spec: path, Pipeline: p.Pipeline, DagID: dagID, Schedule: p.Schedule, TZ: tz,
		Year: start.Year(), Month: int(start.Month()), Day: start.Day(), Catchup: p.Catchup, MaxActiveRuns: max(p.MaxActiveRuns, 1),
		Retries: f.retries, RetryDelaySeconds: int64(f.retryDelay / time.Second), Kubernetes: f.operator == "kubernetes",
		Image: f.image, Namespace: f.namespace, Binary: f.binary}
	vars := map[string]string{}
	for i, st := range steps {
		args := []string{"run", specPath, "--pipeline", p.Pipeline}
		id := p.Pipeline
		if st != "" {
			args = append(args, "--task", st)
			id = st
		}
		args = append(args, "--run-id", airflowRunID, "--skip-if-committed", "--json")
		if d.Kubernetes {
			args = append(args, "--result-file", "/airflow/xcom/return.json")
		}
		v := fmt.Sprintf("t%d_%s", i, dagIDUnsafe.ReplaceAllString(strings.ReplaceAll(id, "-", "_"), "_"))
		vars[id] = v
		d.Tasks = append(d.Tasks, dagTask{ID: id, Var: v, Args: args, PodName: podName(p.Pipeline + "-" + id)})
	}
	for _, e := range edges {
		d.Edges = append(d.Edges, [2]string{vars[e[0]], vars[e[1]]})
		for i := range d.Tasks {
			if d.Tasks[i].ID == e[1] {
				d.Tasks[i].Upstream = append(d.Tasks[i].Upstream, vars[e[0]])
			}
		}
	}
	if d.Kubernetes {
		for i := range d.Tasks {
			d.Tasks[i].Args = append([]string{}, d.Tasks[i].Args...)
		}
	} else {
		for i := range d.Tasks {
			d.Tasks[i].Args = []string{shellCommand(f.binary, d.Tasks[i].Args)}
		}
	}
	var b strings.Builder
	if err := dagTemplate.Execute(&b, d); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// airflowSteps lists the Liminal tasks that become Airflow tasks ("" for
// one step running the whole pipeline) and the dependencies between them
// (upstream, downstream).
func airflowSteps(p *spec.Pipeline, granularity string) ([]string, [][2]string, error) {
	switch granularity {
	case "auto", "task", "pipeline":
	default:
		return nil, nil, fmt.Errorf("--granularity %q: want task, pipeline or auto", granularity)
	}
	if granularity == "pipeline" {
		return []string{""}, nil, nil
	}
	// The tasks `liminal run --task` runs on its own: all but an sql task
	// without a sink that a batch_inference task scores in the same pass.
	scored := map[string]string{}
	for _, t := range p.Tasks {
		if t.Type == "batch_inference" && t.Input != "" {
			scored[t.Input] = t.Task
		}
	}
	var steps []string
	own := map[string]string{} // liminal task -> the step that runs it
	for _, t := range p.Tasks {
		if t.Sink == "" {
			if by, ok := scored[t.Task]; ok && t.Type == "sql" {
				own[t.Task] = by
				continue
			}
			if granularity == "auto" {
				return []string{""}, nil, nil
			}
			return nil, nil, fmt.Errorf("task %s has no sink: its result exists only inside a run of the whole pipeline; use --granularity pipeline", t.Task)
		}
		own[t.Task] = t.Task
		steps = append(steps, t.Task)
	}
	var edges [][2]string
	explicit := false
	for _, t := range p.Tasks {
		explicit = explicit || len(t.DependsOn) > 0
	}
	seen := map[[2]string]bool{}
	for i, t := range p.Tasks {
		down, ok := own[t.Task]
		if !ok {
			continue
		}
		var ups []string
		if explicit {
			ups = t.DependsOn
		} else if i > 0 {
			ups = []string{p.Tasks[i-1].Task}
		}
		for _, u := range ups {
			e := [2]string{own[u], down}
			if e[0] == "" || e[0] == e[1] || seen[e] {
				continue
			}
			seen[e] = true
			edges = append(edges, e)
		}
	}
	return steps, edges, nil
}

// pyString is s as a Python string literal (JSON's escapes are Python's).
func pyString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = pyString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// shellCommand quotes args for bash; the Jinja run id stays unquoted
// inside double quotes so that Airflow renders it.
func shellCommand(bin string, args []string) string {
	q := []string{shellQuote(bin)}
	for _, a := range args {
		if a == airflowRunID {
			q = append(q, `"`+a+`"`)
			continue
		}
		q = append(q, shellQuote(a))
	}
	return strings.Join(q, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./=:@%+,-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// podName is a DNS-1123 name for a pod.
func podName(s string) string {
	s = strings.Trim(regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 50 {
		s = strings.TrimRight(s[:50], "-")
	}
	if s == "" {
		s = "liminal"
	}
	return s
}
