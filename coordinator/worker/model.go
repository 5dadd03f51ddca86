package worker

import (
	"fmt"
	"sort"
	"time"

	"github.com/liminal-data/liminal/infer"
	"github.com/liminal-data/liminal/spec"
)

// ModelConfig turns a spec's model block into the loader's configuration;
// relative paths resolve against dir (the spec file's directory).
func ModelConfig(dir string, m *spec.Model) (infer.Config, error) {
	if m == nil {
		return infer.Config{}, fmt.Errorf("no model")
	}
	cfg := infer.Config{Format: m.Format, Path: m.Path, Dir: dir, Features: m.Features, Runtime: m.Runtime,
		Command: m.Command, Inputs: m.Inputs, Threads: m.Threads}
	if cfg.Runtime != "" {
		cfg.Runtime = cfg.Resolve(cfg.Runtime)
	}
	if m.Timeout != "" {
		d, err := time.ParseDuration(m.Timeout)
		if err != nil || d <= 0 {
			return infer.Config{}, fmt.Errorf("model timeout %q: want a duration such as 30s or 10m", m.Timeout)
		}
		cfg.Timeout = d
	}
	keys := make([]string, 0, len(m.Env))
	for k := range m.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg.Env = append(cfg.Env, k+"="+m.Env[k])
	}
	for _, o := range m.Outputs {
		cfg.Outputs = append(cfg.Outputs, infer.OutputField{Name: o.Name, Type: o.Type})
	}
	return cfg, nil
}
