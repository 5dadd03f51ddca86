package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	k8sDir          = "k8s"
	coordinatorName = "liminal-coordinator"
	workerName      = "liminal-worker"
	dataClaim       = "liminal-data"
	tokenSecret     = "liminal-token"
)

// TestManifestsSchema validates every manifest under k8s/ (the example
// Secret too) against the Kubernetes JSON schemas, strictly: an unknown or
// misspelt field, a wrong type or a missing required field fails.
func TestManifestsSchema(t *testing.T) {
	bin := kubeconformBin(t)
	schemas := schemaDir(t)
	var files []string
	for _, f := range yamlFiles(t, k8sDir) {
		if filepath.Base(f) != "kustomization.yaml" { // no API object; TestKustomization
			files = append(files, f)
		}
	}
	want := 0
	for _, d := range loadDocs(t) {
		want += len(d.objs)
	}
	for _, v := range kubeVersions {
		t.Run("kubernetes="+v, func(t *testing.T) {
			results := kubeconform(t, bin, schemas, v, files)
			for _, r := range results {
				if r.Status == "statusValid" {
					continue
				}
				var b strings.Builder
				fmt.Fprintf(&b, "%s: %s %q: %s", r.Filename, r.Kind, r.Name, strings.TrimPrefix(r.Status, "status"))
				// Msg holds every violation, "... - at '/path': what - at ...".
				if msg, ok := strings.CutPrefix(r.Msg, "problem validating schema. Check JSON formatting: "); ok {
					if _, at, ok := strings.Cut(msg, " - at '"); ok {
						for v := range strings.SplitSeq(at, " - at '") {
							fmt.Fprintf(&b, "\n\tat '%s", strings.TrimSpace(v))
						}
					} else {
						fmt.Fprintf(&b, "\n\t%s", msg)
					}
				} else if r.Msg != "" {
					fmt.Fprintf(&b, "\n\t%s", r.Msg)
				}
				t.Error(b.String())
			}
			if len(results) != want {
				t.Errorf("kubeconform reported %d resources, the manifests hold %d", len(results), want)
			}
		})
	}
}

// TestKustomization checks that kustomization.yaml lists every manifest but
// the examples (*.example.yaml, never applied by `kubectl apply -k`), and
// that every container uses the image it rewrites.
func TestKustomization(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
			Digest  string `yaml:"digest"`
		} `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	if k.Namespace != "" {
		t.Errorf("kustomization.yaml sets namespace %q; the manifests are namespace-agnostic", k.Namespace)
	}
	var want []string
	for _, f := range yamlFiles(t, k8sDir) {
		rel, _ := filepath.Rel(k8sDir, f)
		if rel != "kustomization.yaml" && !strings.HasSuffix(rel, ".example.yaml") {
			want = append(want, filepath.ToSlash(rel))
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources %v, want the manifests %v", got, want)
	}
	images := map[string]bool{}
	for _, im := range k.Images {
		images[im.Name] = true
	}
	for _, d := range deployments(t) {
		for _, c := range d.Spec.Template.Spec.Containers {
			name, _, _ := strings.Cut(c.Image, ":")
			if !images[name] {
				t.Errorf("%s: container %s: image %q is not among kustomization.yaml's images", d.ref, c.Name, c.Image)
			}
		}
	}
}

// TestCoordinatorSingleWriter: one coordinator replica, replaced by
// stopping the old pod first (never two writers of the state).
func TestCoordinatorSingleWriter(t *testing.T) {
	c := deployment(t, coordinatorName)
	if c.Spec.Replicas == nil || *c.Spec.Replicas != 1 {
		t.Errorf("%s: replicas %v, want 1", c.ref, ptrString(c.Spec.Replicas))
	}
	if c.Spec.Strategy.Type != "Recreate" {
		t.Errorf("%s: strategy %q, want Recreate", c.ref, c.Spec.Strategy.Type)
	}
	ctr := onlyContainer(t, c)
	state, ok := flagValue(ctr.Args, "--state")
	if !ok {
		t.Fatalf("%s: no --state", c.ref)
	}
	if v := mountFor(c, ctr, state); v == nil || v.PersistentVolumeClaim == nil {
		t.Errorf("%s: --state %s is not on a PersistentVolumeClaim", c.ref, state)
	}
}

// TestProbesOnDeclaredPorts: every probe, the Prometheus annotation and the
// --http / --listen arguments agree with the ports a container declares.
func TestProbesOnDeclaredPorts(t *testing.T) {
	for _, d := range deployments(t) {
		pod := d.Spec.Template
		for _, c := range pod.Spec.Containers {
			where := fmt.Sprintf("%s: container %s", d.ref, c.Name)
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: needs a liveness and a readiness probe", where)
			}
			httpPort, hasHTTP := flagPort(t, where, c.Args, "--http")
			for kind, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				if p == nil {
					continue
				}
				if p.HTTPGet == nil {
					t.Errorf("%s: %s probe is not an httpGet", where, kind)
					continue
				}
				port, ok := c.port(p.HTTPGet.Port)
				if !ok {
					t.Errorf("%s: %s probe on port %q, which the container does not declare", where, kind, p.HTTPGet.Port)
					continue
				}
				switch {
				case !hasHTTP:
					t.Errorf("%s: %s probe on port %d, but no --http serves it", where, kind, port)
				case port != httpPort:
					t.Errorf("%s: %s probe on port %d, but --http listens on %d", where, kind, port, httpPort)
				}
				wantPath := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[kind]
				if wantPath != "" && p.HTTPGet.Path != wantPath {
					t.Errorf("%s: %s probe path %q, want %q", where, kind, p.HTTPGet.Path, wantPath)
				}
			}
			if lp, ok := flagPort(t, where, c.Args, "--listen"); ok {
				if _, declared := c.port(strconv.Itoa(lp)); !declared {
					t.Errorf("%s: --listen port %d is not declared", where, lp)
				}
			}
			if s, ok := pod.Metadata.Annotations["prometheus.io/port"]; ok && s != strconv.Itoa(httpPort) {
				t.Errorf("%s: prometheus.io/port %q, but /metrics is on the --http port %d", where, s, httpPort)
			}
		}
	}
}

// TestArgsAreCLIFlags runs `liminal <command> --help` of the binary built
// from ./cmd/liminal and checks that every flag a container passes, and every
// flag of the commented-out options (TLS), is one that command accepts.
func TestArgsAreCLIFlags(t *testing.T) {
	bin := buildLiminal(t)
	flagRe := regexp.MustCompile(`(?m)^\s*#\s*-\s+(--[a-z0-9-]+)\s*$`)
	helps := map[string]map[string]bool{}
	for _, f := range loadDocs(t) {
		var deps []deploymentObj
		for _, d := range deployments(t) {
			if strings.HasPrefix(d.ref, f.path+":") {
				deps = append(deps, d)
			}
		}
		if len(deps) == 0 {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		commented := flagRe.FindAllSubmatch(b, -1)
		if len(commented) > 0 && len(deps) > 1 {
			t.Fatalf("%s: commented-out flags in a file with %d Deployments; keep one per file", f.path, len(deps))
		}
		for _, d := range deps {
			for _, c := range d.Spec.Template.Spec.Containers {
				where := fmt.Sprintf("%s: container %s", d.ref, c.Name)
				if len(c.Args) == 0 || strings.HasPrefix(c.Args[0], "-") {
					t.Errorf("%s: args %q do not start with a liminal command", where, c.Args)
					continue
				}
				sub := c.Args[0]
				if helps[sub] == nil {
					helps[sub] = helpFlags(t, bin, sub)
				}
				flags := slices.Clone(c.Args[1:])
				for _, m := range commented {
					flags = append(flags, string(m[1])+" (commented out)")
				}
				for _, a := range flags {
					name, _, _ := strings.Cut(strings.TrimSuffix(a, " (commented out)"), "=")
					if strings.HasPrefix(name, "--") && !helps[sub][name] {
						t.Errorf("%s: %s: `liminal %s --help` has no such flag", where, a, sub)
					}
				}
			}
		}
	}
}

// buildLiminal builds ./cmd/liminal into the cache, where the go command
// leaves it alone (no relinking) while it is up to date.
func buildLiminal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(cacheDir(t), "bin", "liminal-deploy-test", "liminal")
	cmd := exec.CommandContext(t.Context(), goTool(), "build", "-o", bin, "./cmd/liminal")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/liminal: %v\n%s", err, out)
	}
	return bin
}

// helpFlags lists the long flags `liminal sub --help` prints.
func helpFlags(t *testing.T, bin, sub string) map[string]bool {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, sub, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("liminal %s --help: %v\n%s", sub, err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?(--[a-z0-9-]+)`).FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	if !flags["--help"] {
		t.Fatalf("liminal %s --help lists no flags:\n%s", sub, out)
	}
	return flags
}

// TestWiring checks what ties the objects together: the Service selects the
// coordinator (only) on its declared ports, the workers dial that Service,
// the disruption budget selects the workers, every volume and claim exists,
// the token file is on the token Secret and /data is the shared claim.
func TestWiring(t *testing.T) {
	coord := deployment(t, coordinatorName)
	worker := deployment(t, workerName)
	coordCtr, workerCtr := onlyContainer(t, coord), onlyContainer(t, worker)

	svc := find[service](t, "Service", coordinatorName)
	if !selects(svc.Spec.Selector, coord.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector %v does not select the coordinator's pods %v", svc.ref, svc.Spec.Selector, coord.Spec.Template.Metadata.Labels)
	}
	if selects(svc.Spec.Selector, worker.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector %v also selects the workers", svc.ref, svc.Spec.Selector)
	}
	svcPorts := map[string]int{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p.Port
		if _, ok := coordCtr.port(p.TargetPort); !ok {
			t.Errorf("%s: port %s targets %q, which the coordinator does not declare", svc.ref, p.Name, p.TargetPort)
		}
	}
	for _, name := range []string{"grpc", "http"} {
		if _, ok := svcPorts[name]; !ok {
			t.Errorf("%s: no port named %s", svc.ref, name)
		}
	}
	addr, _ := flagValue(workerCtr.Args, "--coordinator")
	if want := fmt.Sprintf("%s:%d", svc.Metadata.Name, svcPorts["grpc"]); addr != want {
		t.Errorf("%s: --coordinator %q, want the Service's gRPC port %q", worker.ref, addr, want)
	}

	pdb := find[disruptionBudget](t, "PodDisruptionBudget", workerName)
	if !selects(pdb.Spec.Selector.MatchLabels, worker.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector does not select the workers", pdb.ref)
	}

	claims := map[string]claim{}
	for _, c := range all[claim](t, "PersistentVolumeClaim") {
		claims[c.Metadata.Name] = c
	}
	if !slices.Contains(claims[dataClaim].Spec.AccessModes, "ReadWriteMany") {
		t.Errorf("claim %s: access modes %v, want ReadWriteMany (every pod mounts it)", dataClaim, claims[dataClaim].Spec.AccessModes)
	}
	secrets := map[string]bool{}
	for _, s := range all[secret](t, "Secret") {
		secrets[s.Metadata.Name] = true
	}
	for _, d := range []deploymentObj{coord, worker} {
		ctr := onlyContainer(t, d)
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector does not select its own pods", d.ref)
		}
		vols := map[string]volume{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
			if v.PersistentVolumeClaim != nil {
				if _, ok := claims[v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("%s: volume %s: claim %q is not in the manifests", d.ref, v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
			if v.Secret != nil && !secrets[v.Secret.SecretName] {
				t.Errorf("%s: volume %s: Secret %q is not in the manifests (nor its example)", d.ref, v.Name, v.Secret.SecretName)
			}
		}
		for _, m := range ctr.VolumeMounts {
			if _, ok := vols[m.Name]; !ok {
				t.Errorf("%s: mount %s: no such volume", d.ref, m.Name)
			}
		}
		if v := mountFor(d, ctr, "/data/x"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != dataClaim {
			t.Errorf("%s: /data is not the shared claim %s", d.ref, dataClaim)
		}
		tokenFile, ok := flagValue(ctr.Args, "--token-file")
		if !ok {
			t.Errorf("%s: no --token-file", d.ref)
		} else if v := mountFor(d, ctr, tokenFile); v == nil || v.Secret == nil || v.Secret.SecretName != tokenSecret {
			t.Errorf("%s: --token-file %s is not on the Secret %s", d.ref, tokenFile, tokenSecret)
		}
	}
}

// TestPodSecurity: non-root as the image's user, read-only root file
// system with a writable /tmp, no privilege escalation, resources set.
func TestPodSecurity(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("../Dockerfile: no numeric USER uid:gid")
	}
	uid, _ := strconv.ParseInt(string(m[1]), 10, 64)
	for _, d := range deployments(t) {
		sc := d.Spec.Template.Spec.SecurityContext
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot not set", d.ref)
		}
		if sc.RunAsUser == nil || *sc.RunAsUser != uid {
			t.Errorf("%s: runAsUser %s, want the Dockerfile's USER %d", d.ref, ptrString(sc.RunAsUser), uid)
		}
		if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
			t.Errorf("%s: no terminationGracePeriodSeconds", d.ref)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("%s: container %s", d.ref, c.Name)
			cs := c.SecurityContext
			if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", where)
			}
			if cs.ReadOnlyRootFilesystem != nil && *cs.ReadOnlyRootFilesystem {
				if v := mountFor(d, c, "/tmp/x"); v == nil || v.EmptyDir == nil {
					t.Errorf("%s: read-only root file system without an emptyDir on /tmp", where)
				}
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("%s: no %s request", where, r)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: no memory limit", where)
			}
		}
	}
}

// ---- the manifests, decoded

// object is what every manifest has; ref names it in messages.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	ref  string
	node *yaml.Node
}

type file struct {
	path string
	objs []object
}

func loadDocs(t *testing.T) []file {
	t.Helper()
	var files []file
	for _, path := range yamlFiles(t, k8sDir) {
		if filepath.Base(path) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f := file{path: path}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var o object
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s:%d: %v", path, n.Line, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			o.ref = fmt.Sprintf("%s: %s %s", path, o.Kind, o.Metadata.Name)
			o.node = &n
			f.objs = append(f.objs, o)
		}
		files = append(files, f)
	}
	return files
}

// meta gives the generic helpers below access to the embedded object.
func (o *object) meta() *object { return o }

// manifest is a kind's type (embedding object), through its pointer.
type manifest[T any] interface {
	*T
	meta() *object
}

// all decodes every object of a kind into T.
func all[T any, P manifest[T]](t *testing.T, kind string) []T {
	t.Helper()
	var out []T
	for _, f := range loadDocs(t) {
		for _, o := range f.objs {
			if o.Kind != kind {
				continue
			}
			var v T
			if err := o.node.Decode(&v); err != nil {
				t.Fatalf("%s: %v", o.ref, err)
			}
			*P(&v).meta() = o
			out = append(out, v)
		}
	}
	return out
}

// find returns the object of a kind with that name.
func find[T any, P manifest[T]](t *testing.T, kind, name string) T {
	t.Helper()
	for _, v := range all[T, P](t, kind) {
		if P(&v).meta().Metadata.Name == name {
			return v
		}
	}
	t.Fatalf("no %s %s under %s", kind, name, k8sDir)
	panic("unreachable")
}

func deployments(t *testing.T) []deploymentObj {
	t.Helper()
	ds := all[deploymentObj](t, "Deployment")
	if len(ds) == 0 {
		t.Fatalf("no Deployment under %s", k8sDir)
	}
	return ds
}

func deployment(t *testing.T, name string) deploymentObj {
	t.Helper()
	return find[deploymentObj](t, "Deployment", name)
}

type deploymentObj struct {
	object `yaml:",inline"`
	Spec   struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
					RunAsUser    *int64 `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []volume    `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// port resolves a port given by name or number to a declared containerPort.
func (c container) port(nameOrNumber string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(p.ContainerPort) == nameOrNumber {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a name or a number
	} `yaml:"httpGet"`
}

type volume struct {
	Name                  string `yaml:"name"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	EmptyDir *struct{} `yaml:"emptyDir"`
}

type service struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type disruptionBudget struct {
	object `yaml:",inline"`
	Spec   struct {
		Selector labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type claim struct {
	object `yaml:",inline"`
	Spec   struct {
		AccessModes []string `yaml:"accessModes"`
	} `yaml:"spec"`
}

type secret struct {
	object `yaml:",inline"`
}

// ---- helpers

func onlyContainer(t *testing.T, d deploymentObj) container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.ref, len(cs))
	}
	return cs[0]
}

// mountFor returns the volume mounted at the longest mount path holding path.
func mountFor(d deploymentObj, c container, path string) *volume {
	best := ""
	var found *volume
	for _, m := range c.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (path == mp || strings.HasPrefix(path, mp+"/")) && len(mp) > len(best) {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					best, found = mp, &v
				}
			}
		}
	}
	return found
}

// flagValue returns the value of --name in args ("--name V" or "--name=V").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// flagPort returns the port of a host:port flag.
func flagPort(t *testing.T, where string, args []string, name string) (int, bool) {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		return 0, false
	}
	_, p, found := strings.Cut(v, ":")
	n, err := strconv.Atoi(p)
	if !found || err != nil {
		t.Errorf("%s: %s %q is not host:port", where, name, v)
		return 0, false
	}
	return n, true
}

// selects reports whether a non-empty selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
