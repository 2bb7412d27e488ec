#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) and kubectl from Go modules into
# $ENVTEST_DIR (default bin/k8s/1.37.2), skipping any binary already built at the right version.
# Nothing is downloaded but Go modules. Cold: ~12 min on two cores; warm: seconds.
# The real cluster (hack/cluster.sh) also needs the node and controller binaries, built from the
# same k8s.io/kubernetes module: kubelet (cold ~20 min on two busy cores), kube-controller-manager
# (~2.5 min after the kubelet), kube-scheduler (~45 s), kube-proxy.
#
# Usage: hack/envtest-binaries.sh [kube-apiserver|etcd|kubectl|kubelet|kube-controller-manager|
#                                  kube-scheduler|kube-proxy ...]   (default: etcd kube-apiserver kubectl)
# Prints the directory holding the binaries (use it as KUBEBUILDER_ASSETS).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# The version is written once, in the tools module that builds these binaries.
k8s_version=$(sed -n 's|^\(require\)\{0,1\}[[:space:]]*k8s.io/kubernetes \(v[0-9][^ ]*\).*|\2|p' "$root/hack/tools/kube-apiserver/go.mod")
k8s_minor=${k8s_version#v1.}
k8s_minor=${k8s_minor%%.*}
[ -n "$k8s_version" ] || { echo "no k8s.io/kubernetes version in hack/tools/kube-apiserver/go.mod" >&2; exit 1; }
etcd_version=v3.6.16
out=${ENVTEST_DIR:-$root/bin/k8s/${k8s_version#v}}
mkdir -p "$out"

export CGO_ENABLED=0 GOFLAGS=-mod=mod

# Version stamps, so `kube-apiserver --version` prints the release it was built from.
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=${k8s_version} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${k8s_minor} \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=${k8s_version} \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=${k8s_minor}"

built() { # name, expected version substring
  local version=(--version)
  # kubectl has no --version flag.
  [ "$1" = kubectl ] && version=(version --client)
  # Not grep -q: under pipefail, grep quitting early can fail the pipeline and force a rebuild.
  [ -x "$out/$1" ] && "$out/$1" "${version[@]}" 2>/dev/null | grep -- "$2" >/dev/null
}

build_k8s() { # name
  if built "$1" "${k8s_version}"; then return; fi
  echo "building $1 ${k8s_version} (cold: several minutes)..." >&2
  (cd "$root/hack/tools/kube-apiserver" && go build -trimpath -ldflags "$k8s_ldflags" -o "$out/$1" "k8s.io/kubernetes/cmd/$1")
}

build_etcd() {
  if built etcd "${etcd_version#v}"; then return; fi
  echo "building etcd ${etcd_version}..." >&2
  (cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd kube-apiserver kubectl)
for t in "${targets[@]}"; do
  case "$t" in
    etcd) build_etcd ;;
    kube-apiserver|kubectl|kubelet|kube-controller-manager|kube-scheduler|kube-proxy) build_k8s "$t" ;;
    *) echo "unknown binary: $t" >&2; exit 2 ;;
  esac
done
echo "$out"
