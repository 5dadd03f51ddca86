// Package connectors owns the contracts between Liminal and the systems it
// reads and writes — Source, Sink, SinkWriter, the DuckDB-native variants
// NativeSource and NativeSink, the staged-output Manifest — and the registry
// through which connector sub-packages register themselves by URI scheme in
// init(). The bundle package connectors/all decides which connectors a
// binary has.
//
// connectors imports partition and arrow-go. It must not import engine,
// infer or coordinator; a connector sub-package must not import a sibling.
package connectors
