package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The validator and the schemas, pinned. kubeconform is built from its
// module with `go install` (the Go module proxy), so that it needs no change
// to our go.mod. It would download the Kubernetes JSON schemas from GitHub;
// here they come from the kubernetes-validate wheel on PyPI, which bundles
// them per Kubernetes version (a "-local-strict" directory per version: one
// file per kind, with $refs into a shared _definitions.json).
const (
	kubeconformPkg     = "github.com/yannh/kubeconform/cmd/kubeconform"
	kubeconformVersion = "v0.8.0"

	schemaWheel        = "kubernetes-validate"
	schemaWheelVersion = "1.37.0"
	schemaWheelFile    = "kubernetes_validate-1.37.0-py3-none-any.whl"
	schemaWheelSHA256  = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
	schemaWheelPrefix  = "kubernetes_validate/kubernetes-json-schema/"
)

// kubeVersions are the Kubernetes versions the manifests are validated
// against: the oldest we support and the newest the wheel bundles.
var kubeVersions = []string{"1.29.0", "1.37.0"}

// cacheDir is where fetched tools and schemas are kept across runs:
// $LIMINAL_CACHE, else ~/.cache/liminal (as the scripts do).
func cacheDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LIMINAL_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("no cache directory: set LIMINAL_CACHE or HOME: %v", err)
	}
	return filepath.Join(home, ".cache", "liminal")
}

// kubeconformBin returns the pinned kubeconform, built into
// <cache>/bin/kubeconform-<version>/ on first use.
func kubeconformBin(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(cacheDir(t), "bin", "kubeconform-"+kubeconformVersion)
	bin := filepath.Join(dir, "kubeconform")
	if isFile(bin) {
		return bin
	}
	tmp := tempSibling(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), "install", kubeconformPkg+"@"+kubeconformVersion)
	cmd.Dir = tmp // outside any module: pkg@version ignores ours anyway
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "CGO_ENABLED=0")
	t.Logf("building kubeconform %s (go install, Go module proxy)", kubeconformVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cannot obtain the manifest validator: go install %s@%s: %v\n%s",
			kubeconformPkg, kubeconformVersion, err, out)
	}
	os.RemoveAll(dir) // a leftover without the binary
	publish(t, tmp, dir)
	if !isFile(bin) {
		t.Fatalf("cannot obtain the manifest validator: go install left no %s", bin)
	}
	return bin
}

// schemaDir returns a directory holding v<version>-local-strict/ for every
// kubeVersions entry, extracted from the pinned kubernetes-validate wheel.
func schemaDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(cacheDir(t), "kubernetes-json-schema", schemaWheel+"-"+schemaWheelVersion)
	complete := true
	for _, v := range kubeVersions {
		if !isFile(filepath.Join(dir, "v"+v+"-local-strict", "_definitions.json")) {
			complete = false
		}
	}
	if complete {
		return dir
	}
	wheel := schemaWheelPath(t)
	tmp := tempSibling(t, dir)
	if err := extractSchemas(wheel, tmp, kubeVersions); err != nil {
		t.Fatalf("cannot obtain the Kubernetes JSON schemas from %s: %v", wheel, err)
	}
	os.RemoveAll(dir) // an older extraction with fewer versions
	publish(t, tmp, dir)
	return dir
}

// schemaWheelPath downloads the wheel with pip (once) and checks its hash.
func schemaWheelPath(t *testing.T) string {
	t.Helper()
	dl := filepath.Join(cacheDir(t), "pip", schemaWheel)
	wheel := filepath.Join(dl, schemaWheelFile)
	if !isFile(wheel) {
		py, err := exec.LookPath("python3")
		if err != nil {
			if py, err = exec.LookPath("python"); err != nil {
				t.Fatalf("cannot obtain the Kubernetes JSON schemas: they come from the PyPI package %s, downloaded with pip, and neither python3 nor python is on PATH", schemaWheel)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, "-m", "pip", "download", "--quiet",
			"--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
			"--dest", dl, schemaWheel+"=="+schemaWheelVersion)
		t.Logf("downloading %s==%s (pip, PyPI)", schemaWheel, schemaWheelVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cannot obtain the Kubernetes JSON schemas: pip download %s==%s: %v\n%s",
				schemaWheel, schemaWheelVersion, err, out)
		}
		if !isFile(wheel) {
			t.Fatalf("cannot obtain the Kubernetes JSON schemas: pip download left no %s", wheel)
		}
	}
	b, err := os.ReadFile(wheel)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != schemaWheelSHA256 {
		t.Fatalf("%s: sha256 %x, want %s (delete it to download again)", wheel, sum, schemaWheelSHA256)
	}
	return wheel
}

// extractSchemas writes the wheel's v<version>-local-strict directories into
// dst. Its schemas carry "$id": "https://kubernetes.io/api/..." and refer to
// "/api/_definitions.json#/$defs/...", both resolved against kubernetes.io;
// the $id is dropped and the refs made relative, so that they resolve to the
// _definitions.json next to each file.
func extractSchemas(wheel, dst string, versions []string) error {
	z, err := zip.OpenReader(wheel)
	if err != nil {
		return err
	}
	defer z.Close()
	for _, v := range versions {
		sub := "v" + v + "-local-strict/"
		n := 0
		for _, f := range z.File {
			name, ok := strings.CutPrefix(f.Name, schemaWheelPrefix+sub)
			if !ok || name == "" || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") {
				continue
			}
			b, err := readZip(f)
			if err != nil {
				return err
			}
			if b, err = localizeSchema(b); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
			if err := os.MkdirAll(filepath.Join(dst, sub), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, sub, name), b, 0o644); err != nil {
				return err
			}
			n++
		}
		if n == 0 {
			return fmt.Errorf("no schemas for Kubernetes %s under %s%s", v, schemaWheelPrefix, sub)
		}
	}
	return nil
}

func readZip(f *zip.File) ([]byte, error) {
	r, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// localizeSchema drops a schema's top-level $id and makes its refs to
// /api/_definitions.json relative; a ref left pointing elsewhere than this
// directory is an error (the wheel's layout changed).
func localizeSchema(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	delete(doc, "$id")
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	out = bytes.ReplaceAll(out, []byte(`"$ref":"/api/_definitions.json#`), []byte(`"$ref":"_definitions.json#`))
	for _, bad := range []string{`"$ref":"/`, `"$ref":"http`} {
		if i := bytes.Index(out, []byte(bad)); i >= 0 {
			return nil, fmt.Errorf("unexpected non-local $ref %.80s", out[i:])
		}
	}
	return out, nil
}

// tempSibling makes a temporary directory next to dir (same file system, so
// that publish can rename it into place).
func tempSibling(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	return tmp
}

// publish renames tmp to dir; another process that got there first wins.
func publish(t *testing.T, tmp, dir string) {
	t.Helper()
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return
		}
		t.Fatal(err)
	}
}

// goTool is the go command: the one `go test` puts first on PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// kubeconformResult is one resource of kubeconform's -output json.
type kubeconformResult struct {
	Filename string `json:"filename"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Msg      string `json:"msg"` // every violation, when Status is statusInvalid
}

// kubeconform validates files against the schemas of one Kubernetes version
// in strict mode (unknown and duplicate fields are errors) and returns one
// result per resource.
func kubeconform(t *testing.T, bin, schemas, version string, files []string) []kubeconformResult {
	t.Helper()
	tpl := filepath.Join(schemas, "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}",
		"{{ .ResourceKind }}{{ .KindSuffix }}.json")
	args := append([]string{
		"-strict", "-summary", "-verbose", "-output", "json",
		"-kubernetes-version", version, "-schema-location", tpl,
	}, files...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out struct {
		Resources []kubeconformResult `json:"resources"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("kubeconform: %v (output not JSON: %v)\nstdout: %s\nstderr: %s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		t.Fatalf("kubeconform: %v\n%s", runErr, stderr.Bytes())
	}
	return out.Resources
}

// yamlFiles lists the manifests of dir, sorted.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests under %s", dir)
	}
	return files
}
