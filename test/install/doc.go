// Package install holds the checks that the shipped manifests (config/default rendered by
// kustomize, the Helm chart, config/prometheus, config/samples) are accepted by a real API
// server. The tests build kustomize and helm from hack/tools when bin/ lacks them.
package install
