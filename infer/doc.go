// Package infer owns models: loading model files (XGBoost JSON, LightGBM
// text; later ONNX, linear models, user programs), binding their features
// to Arrow columns, and vectorized scoring of Arrow record batches. The
// tree evaluators are ours (no pure-Go tree library can be obtained) and
// are written for speed: flat node arrays, blocks of rows per tree, no
// allocation per row.
//
// infer is a leaf: standard library and arrow-go only. It must not import
// engine, connectors or coordinator; the engine declares the Scorer
// interface it needs.
package infer
