// Package serve owns real-time model serving over HTTP: the Open Inference
// Protocol (KServe v2 REST) endpoints and a plain JSON predict endpoint in
// front of infer.Model values, with per-model micro-batching (concurrent
// requests are concatenated into one record batch and scored with a single
// Predict call) and graceful shutdown.
//
// Request bodies are decoded straight into Arrow arrays of the model's input
// types; responses are written from the Arrow output columns.
//
// serve depends on infer, arrow-go and the standard library only. It must
// not import engine, connectors or coordinator (nor spec: the CLI turns a
// spec's services into models and Options).
package serve
