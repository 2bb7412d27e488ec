#!/usr/bin/env bash
# make run: the manager against the cluster of the current kubeconfig when it answers within 3 s;
# otherwise (or with LOCAL=1, or FAKE_WHATSAPP=1) cmd/localdev: an embedded kube-apiserver and
# etcd, the controller, and session pods as local processes.
#
# Environment: LOCAL=1, FAKE_WHATSAPP=1, ENVTEST_DIR (where hack/envtest-binaries.sh builds).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .local/bin
CGO_ENABLED=0 go build -o .local/bin/localdev ./cmd/localdev

# The fake WhatsApp needs the session built with the fakewa tag, which only local mode does.
if [ "${LOCAL:-}" != 1 ] && [ "${FAKE_WHATSAPP:-}" != 1 ] && .local/bin/localdev -probe; then
  echo "cluster reachable: running the manager against it (LOCAL=1 for the embedded local control plane)" >&2
  exec go run ./cmd/manager --leader-elect=false
fi

echo "local mode: embedded control plane from hack/envtest-binaries.sh (its first build: ~12 min on two cores)" >&2
assets=$(hack/envtest-binaries.sh kube-apiserver etcd)
fake=()
if [ "${FAKE_WHATSAPP:-}" = 1 ]; then fake=(-fake-whatsapp); fi
# exec: Ctrl-C reaches localdev directly, which stops everything it started before it exits.
exec .local/bin/localdev -assets "$assets" "${fake[@]}"
