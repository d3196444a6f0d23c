//go:build tools

// Consumer module for building Helm with the versions pinned here.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
