// Package spec owns the declarative Liminal spec: the Go types that describe
// sources, sinks, pipelines, tasks and services; YAML decoding with the
// position of every field; ${VAR} and ${VAR:-default} interpolation of scalar
// values; validation that reports every problem at once as
// "file:line: field.path: message"; and the JSON Schema of the format
// (liminal.schema.json, generated from the types and embedded as SchemaJSON).
//
// A spec is read with Load or Parse and is valid when they return no error.
// Other packages that find semantic problems later (a model input missing
// from a source, say) report them with Spec.Errorf, which points at the line
// of the nearest known field.
//
// Field paths name a place in the document: map keys and struct fields are
// joined with dots, list items use [index], and keys that are not plain words
// are quoted: "sources.events.uri", "pipelines[0].tasks[1].sql_file",
// `sources.events.options["csv.delim"]`. The empty path is the whole document.
//
// Package spec must not import any other liminal package: it sits at the
// bottom of the dependency graph and depends only on the standard library,
// gopkg.in/yaml.v3 and github.com/invopop/jsonschema (deps_test.go enforces
// this).
package spec
