package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvRuntime names the environment variable that points at libonnxruntime.
const EnvRuntime = "LIMINAL_ONNXRUNTIME_LIB"

// MinVersion is the oldest ONNX Runtime release the binding works with
// (onnxruntime_go v1.27 asks for C API version 24).
const MinVersion = "1.24"

// ErrRuntimeNotFound is returned when no libonnxruntime can be found or
// loaded.
var ErrRuntimeNotFound = errors.New("onnxruntime library not found")

// The ONNX Runtime environment is global to the process: the library is
// loaded and initialized once, by the first model that needs it, and never
// unloaded. A failed attempt (a wrong path) does not poison the process: the
// next Open tries again.
var runtimeState struct {
	mu      sync.Mutex
	path    string // the library in use, "" until initialized
	version string
}

// SearchPath lists, in order, the glob patterns tried for libonnxruntime
// when neither Config.Runtime nor LIMINAL_ONNXRUNTIME_LIB is set: the copy
// scripts/onnxruntime.sh puts in the liminal cache, the onnxruntime wheel in
// the project's Python environment (scripts/pyenv.sh), then the system
// library directories. The cache is $LIMINAL_CACHE or ~/.cache/liminal.
func SearchPath() []string {
	cache := os.Getenv("LIMINAL_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "liminal")
		}
	}
	var pats []string
	if cache != "" {
		pats = append(pats,
			filepath.Join(cache, "onnxruntime", "libonnxruntime.so*"),
			filepath.Join(cache, "venv", "lib", "python3*", "site-packages", "onnxruntime", "capi", "libonnxruntime.so*"),
		)
	}
	for _, d := range []string{"/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"} {
		pats = append(pats, filepath.Join(d, "libonnxruntime.so*"))
	}
	return pats
}

// searchPath is SearchPath; tests replace it.
var searchPath = SearchPath

// findRuntime returns the first library the search path finds (the newest
// version when a pattern matches several).
func findRuntime() (string, error) {
	pats := searchPath()
	for _, p := range pats {
		matches, _ := filepath.Glob(p)
		var files []string
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				files = append(files, m)
			}
		}
		if len(files) == 0 {
			continue
		}
		sort.Slice(files, func(i, j int) bool { return versionLess(soVersion(files[j]), soVersion(files[i])) })
		return files[0], nil
	}
	return "", fmt.Errorf("%w: looked in %s. %s", ErrRuntimeNotFound, strings.Join(pats, ", "), installHint)
}

const installHint = "Install it with scripts/onnxruntime.sh (prints the library's path), or " +
	"pip install onnxruntime (>= " + MinVersion + ") and point " + EnvRuntime +
	" (or the model's runtime setting) at site-packages/onnxruntime/capi/libonnxruntime.so.*"

// LoadRuntime loads and initializes libonnxruntime for the process and
// returns the library's path and version. lib is the library to use; empty
// means LIMINAL_ONNXRUNTIME_LIB, else the first match on SearchPath. Once a
// library is loaded, asking for another one is an error (the runtime is
// global and cannot be swapped); asking for none returns the loaded one.
func LoadRuntime(lib string) (path, version string, err error) {
	source := "model runtime setting"
	if lib == "" {
		lib = os.Getenv(EnvRuntime)
		source = EnvRuntime
	}
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	if runtimeState.path != "" {
		if lib != "" && !samePath(lib, runtimeState.path) {
			return "", "", fmt.Errorf("onnx: this process already uses %s (onnxruntime %s); it cannot also load %s (%s): the ONNX Runtime is global to a process, use one library for every model",
				runtimeState.path, runtimeState.version, lib, source)
		}
		return runtimeState.path, runtimeState.version, nil
	}
	if lib != "" {
		st, err := os.Stat(lib)
		if err != nil {
			return "", "", fmt.Errorf("%w: %s (from %s): %v. %s", ErrRuntimeNotFound, lib, source, err, installHint)
		}
		if st.IsDir() {
			return "", "", fmt.Errorf("%w: %s (from %s) is a directory, not the library file. %s", ErrRuntimeNotFound, lib, source, installHint)
		}
	} else {
		if lib, err = findRuntime(); err != nil {
			return "", "", err
		}
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "ORT API base: 2") {
			v := soVersion(lib)
			if v == "" {
				v = "unknown"
			}
			return "", "", fmt.Errorf("%w: %s is too old (version %s); liminal needs onnxruntime >= %s. %s", ErrRuntimeNotFound, lib, v, MinVersion, installHint)
		}
		return "", "", fmt.Errorf("%w: cannot load %s: %v. %s", ErrRuntimeNotFound, lib, err, installHint)
	}
	version = ort.GetVersion()
	if versionLess(version, MinVersion) {
		ort.DestroyEnvironment()
		return "", "", fmt.Errorf("%w: %s is onnxruntime %s; liminal needs >= %s. %s", ErrRuntimeNotFound, lib, version, MinVersion, installHint)
	}
	runtimeState.path, runtimeState.version = lib, version
	return lib, version, nil
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// soVersion is the version in a library file name (libonnxruntime.so.1.31.1
// -> 1.31.1), "" when it has none.
func soVersion(path string) string {
	base := filepath.Base(path)
	i := strings.Index(base, ".so.")
	if i < 0 {
		return ""
	}
	return base[i+4:]
}

// versionLess compares dotted numeric versions ("" is the smallest;
// non-numeric parts compare as 0).
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(leadingDigits(pa[i]))
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(leadingDigits(pb[i]))
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func leadingDigits(s string) string {
	for i, c := range s {
		if c < '0' || c > '9' {
			return s[:i]
		}
	}
	return s
}
