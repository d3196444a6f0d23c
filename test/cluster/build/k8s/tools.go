//go:build tools

// This consumer module exists only to build Kubernetes binaries from the Go
// module proxy: `go install k8s.io/kubernetes/cmd/...@v` cannot work because
// k8s.io/kubernetes replaces its staging modules with local paths. The imports
// below keep `go mod tidy` resolving everything the binaries need; build.sh
// then runs `go build k8s.io/kubernetes/cmd/<name>` inside this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-proxy/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubernetes/cmd/kubelet/app"
	_ "k8s.io/kubectl/pkg/cmd"
)
