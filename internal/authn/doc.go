// Package authn holds what the REST API and the cluster's gRPC service share
// about credentials.
//
// It imports the standard library only; anything may import it.
package authn
