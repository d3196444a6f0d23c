//go:build tools

// Consumer module for building etcd (its main package is the module root of
// go.etcd.io/etcd/server/v3). Kept apart from the Kubernetes module so their
// dependency versions do not mix.
package tools

import _ "go.etcd.io/etcd/server/v3"
