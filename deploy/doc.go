// Package deploy owns the deployment files of Liminal: the Kubernetes
// manifests under k8s/ (applied with `kubectl apply -k deploy/k8s`) and the
// Grafana dashboard under grafana/. The repository's Dockerfile builds the
// image they run.
//
// It has no Go code of its own, only tests: deploy_test.go validates every
// manifest against the Kubernetes JSON schemas with kubeconform (strict mode,
// several Kubernetes versions) and checks what a schema cannot see — probes
// on declared ports, the coordinator's single replica and Recreate strategy,
// selectors, volumes, the arguments that tie coordinator, workers and
// Service together, and every flag against `liminal <command> --help` of the
// binary built from ./cmd/liminal. tools_test.go fetches the validator and
// the schemas from the package registries into ~/.cache/liminal.
//
// It imports nothing of ours, and nothing imports it.
package deploy
