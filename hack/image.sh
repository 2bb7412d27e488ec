#!/usr/bin/env bash
# Builds the operator's image without a container engine or a registry: the static manager and
# session binaries (the only entry points that ship: development commands such as cmd/localdev
# and the fake WhatsApp server never go in), assembled by hack/tools/image into a docker archive
# that `ctr -n k8s.io images import` and `docker load` read. The same inputs give the same
# image digest (SOURCE_DATE_EPOCH, default 0).
#
# Usage: hack/image.sh [ARCHIVE [TAG]]   (default: bin/image/whatsapp-operator.tar, $IMG or
#                                         whatsapp-operator:dev)
# Prints: ARCHIVE NAME DIGEST
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
archive=${1:-$root/bin/image/whatsapp-operator.tar}
tag=${2:-${IMG:-whatsapp-operator:dev}}
# The binaries it assembles are left beside the archive.
work=$(dirname "$archive")
mkdir -p "$work"

# What ships, written once: the Dockerfile builds the same list (test/image checks both).
commands=(manager session)

export CGO_ENABLED=0 GOOS=linux
files=()
for c in "${commands[@]}"; do
  (cd "$root" && go build -trimpath -ldflags "-s -w" -o "$work/$c" "./cmd/$c")
  files+=(-file "/$c=$work/$c:0755")
done
(cd "$root/hack/tools/image" && go build -trimpath -o "$work/image-tool" .)
"$work/image-tool" -o "$archive" -tag "$tag" -entrypoint /manager "${files[@]}"
