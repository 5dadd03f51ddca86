// Package infer will own models: loading (XGBoost, LightGBM, ONNX, linear,
// user programs), binding features to Arrow columns, vectorized scoring
// and the HTTP inference service. It is empty until the batch-inference
// milestone: nothing here is wired into the engine yet.
//
// infer is a leaf: standard library and arrow-go only. It must not import
// engine, connectors or coordinator; the engine declares the Scorer
// interface it needs.
package infer
