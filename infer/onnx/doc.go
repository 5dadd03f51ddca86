// Package onnx registers the "onnx" model format with package infer: it
// loads .onnx files into ONNX Runtime sessions (through
// github.com/yalue/onnxruntime_go, which dlopens libonnxruntime at run
// time) and scores Arrow record batches with them. Import it for its side
// effect: import _ "github.com/liminal-data/liminal/infer/onnx".
//
// It owns finding and loading libonnxruntime, mapping a model's tensors to
// Arrow columns, and running sessions. Like infer it is a leaf: it must not
// import engine, connectors, coordinator or spec (deps_test.go checks).
//
// # The runtime library
//
// libonnxruntime (>= 1.24, MinVersion) is looked up in this order: the
// model's runtime setting (infer.Config.Runtime), the environment variable
// LIMINAL_ONNXRUNTIME_LIB, then the search path (SearchPath):
//
//	$LIMINAL_CACHE/onnxruntime/libonnxruntime.so*   (scripts/onnxruntime.sh)
//	$LIMINAL_CACHE/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*
//	/usr/local/lib, /usr/lib, /usr/lib/x86_64-linux-gnu (libonnxruntime.so*)
//
// where $LIMINAL_CACHE defaults to ~/.cache/liminal. scripts/onnxruntime.sh
// puts the library from the onnxruntime wheel on PyPI in the cache and
// prints its path; `pip install onnxruntime` and pointing
// LIMINAL_ONNXRUNTIME_LIB at site-packages/onnxruntime/capi/
// libonnxruntime.so.* works as well. The runtime is global to a process:
// it is loaded once (LoadRuntime), and a later model naming a different
// library gets an error.
//
// # Inputs
//
// A model with one 2-D float (or double) input [N,F] — skl2onnx's default
// "float_input"/"X", Keras and PyTorch exports — takes F features. Their
// names are Config.Features when set (exactly F of them), else the model's
// metadata_props entry "feature_names" (comma separated), else f0..f{F-1}.
// Predict writes the batch into a row-major matrix (infer.Float32Rows:
// nulls become NaN, so models must handle NaN themselves, e.g. with an
// imputer in the pipeline).
//
// A model with several inputs, each [N] or [N,1] (skl2onnx with one
// initial type per column, e.g. a ColumnTransformer), takes one column per
// input, named by the input (or by Config.Features, in input order) and
// typed as declared: float, double, int64 or string. A null int64 value
// fails the batch; a null string is fed as "".
//
// The batch dimension should be dynamic. A model exported with a fixed
// batch size B (a PyTorch export without dynamic_axes) is run B rows at a
// time, the last chunk padded; that is correct but slow for B = 1.
//
// # Outputs
//
// Outputs become columns by these rules:
//
//	(a) a label tensor (int64, int32 or string, [N] or [N,1]) and a float
//	    [N,K] tensor, in either order — a classifier exported by skl2onnx
//	    with options={id(model): {'zipmap': False}} — give "prediction"
//	    (int64 or string: the label) and "probability_<k>" (float64) for
//	    k < K;
//	(b) a single float output [N] or [N,1] — a regressor — gives
//	    "prediction" (float64);
//	(c) a single float output [N,K], K > 1 — a softmax head of a Keras or
//	    PyTorch classifier — gives "prediction" (int64, the argmax, first on
//	    ties) and "probability_<k>" (float64, the values as they are);
//	(d) anything else gives one column per output, named by the output
//	    ("name_<k>" for the K columns of an [N,K] output); floats widen to
//	    float64, integers to int64.
//
// skl2onnx's default ZipMap output (a sequence of maps) is refused with
// infer.ErrUnsupported: re-export with zipmap False.
//
// # Execution
//
// Each model has one session with Config.Threads intra-op threads (default
// 1) and one inter-op thread; onnxruntime's Run is thread-safe, so Predict
// may be called concurrently. A batch runs in chunks of up to 65536 rows.
// Close destroys the session.
//
// # Fixtures
//
// testdata/make_fixtures.py makes the test models with scikit-learn and
// skl2onnx, and checks our outputs against onnxruntime's Python session and
// scikit-learn. The Keras/PyTorch shape (input "input" [batch,F], Gemm/Relu
// layers, a Softmax output [batch,K]) is emulated with onnx.helper from an
// sklearn MLPClassifier's weights: neither torch nor tensorflow is
// installed here.
package onnx
