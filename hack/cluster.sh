#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, from Go modules and Debian packages:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and a kubelet
# (hack/envtest-binaries.sh builds them from k8s.io/kubernetes v1.37.2), with a private
# containerd (own root, state and socket; the system one, if any, is never touched), runc and the
# CNI bridge plugins (Debian packages, installed when missing), a locally built pause image, and
# static local PersistentVolumes behind a default no-provisioner StorageClass (so a PVC gets a
# real volume that honours fsGroup). Nothing is pulled: images are imported with
# `ctr -n k8s.io images import`.
#
#   hack/cluster.sh up      start it (idempotent: a running cluster is left as it is); prints the kubeconfig path
#   hack/cluster.sh down    stop everything it started and restore the host (see teardown below)
#   hack/cluster.sh verify-down   fail, listing them, if any process, mount, interface, cgroup,
#                           iptables chain or directory of the cluster is left on the host
#   hack/cluster.sh import ARCHIVE...   import image archives into the node's containerd
#   hack/cluster.sh kubelet-stop|kubelet-start   node loss and return (test/cluster)
#   hack/cluster.sh env     print the addresses tests need (KUBECONFIG, node and gateway IPs)
#
# Addresses: the node IP is on an interface of its own (waop0, a bridge without ports, 10.213.0.1/32), pods get 10.213.1.0/24 on
# the bridge waopbr0 (gateway 10.213.1.1), Services 10.213.128.0/24, DNS for cluster.local
# on 10.213.0.1:53 (test/cluster/cmd/cluster-dns). All of it exists only in
# this machine's kernel: pods are network namespaces this script's containerd creates.
# Ports (distinct from envtest's random loopback ports): etcd 127.0.0.1:23791/23801,
# kube-apiserver 10.213.0.1:26443, kubelet 10.213.0.1:20250, the rest on loopback 2024x-2025x.
#
# Pitfalls met and fixed (../shared/REAL-CLUSTER-NOTES.md): kubelet 1.37 on cgroup v1 needs
# failCgroupV1: false; without CAP_SYS_RESOURCE CRI needs restrict_oom_score_adj; kubectl logs
# needs --kubelet-preferred-address-types and --node-ip; hostPath ignores fsGroup, local PVs
# honour it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
k8s_version=v1.37.2
bin=${ENVTEST_DIR:-$root/bin/k8s/${k8s_version#v}}
D=${CLUSTER_DIR:-/tmp/waoperator-cluster}
node=waop-node
node_ip=10.213.0.1
pod_cidr=10.213.1.0/24
gateway_ip=10.213.1.1
service_cidr=10.213.128.0/24
api_port=26443
bridge=waopbr0
dummy=waop0
cgroup_root=waoperator
pv_count=${CLUSTER_PV_COUNT:-12}
sock=$D/containerd/containerd.sock
export KUBECONFIG=$D/kubeconfig

log() { echo "cluster: $*" >&2; }
kubectl() { "$bin/kubectl" --kubeconfig "$D/kubeconfig" "$@"; }
ctr_() { ctr --address "$sock" -n k8s.io "$@"; }

# ---------------------------------------------------------------- prerequisites

install_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v conntrack >/dev/null || missing+=(conntrack)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  # policy-rc.d keeps the packages' own services (the system containerd) from starting.
  local policy=/usr/sbin/policy-rc.d created_policy=
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; created_policy=1; fi
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$created_policy" ] || rm -f $policy
}

build_binaries() {
  ENVTEST_DIR="$bin" "$root/hack/envtest-binaries.sh" etcd kube-apiserver kubectl kubelet \
    kube-controller-manager kube-scheduler kube-proxy >/dev/null
}

# ---------------------------------------------------------------- host state we change

# remember records what existed before up, so down removes only what up created.
remember() { # key value
  echo "$1=$2" >>"$D/host-state"
}
recalled() { sed -n "s/^$1=//p" "$D/host-state" 2>/dev/null | tail -1; }

mark_created_dir() { # dir: created by us (and by what we start) if absent now
  [ -e "$1" ] || remember created "$1"
}

# ---------------------------------------------------------------- certificates

pki() {
  local p=$D/pki
  [ -f "$p/done" ] && return
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=waoperator-test-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "IP:$node_ip,IP:10.213.128.1,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet-serving "/CN=$node" "IP:$node_ip,DNS:$node"
  cert admin "/O=system:masters/CN=admin"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert kubelet "/O=system:nodes/CN=system:node:$node"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert proxy "/CN=system:kube-proxy"
  for who in admin kubelet controller-manager scheduler proxy; do kubeconfig_for "$who"; done
  cp "$p/admin.kubeconfig" "$D/kubeconfig"
  touch "$p/done"
}

cert() { # name subject [subjectAltNames]
  local p=$D/pki ext
  ext=$(mktemp)
  if [ -n "${3:-}" ]; then
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >"$ext"
  fi
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$p/$1.key" -out "$p/$1.csr" 2>/dev/null
  openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 30 \
    -extfile "$ext" -out "$p/$1.crt" 2>/dev/null
  rm -f "$ext" "$p/$1.csr"
}

kubeconfig_for() { # who
  local p=$D/pki
  cat >"$p/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: waoperator
  cluster:
    server: https://$node_ip:$api_port
    certificate-authority: $p/ca.crt
users:
- name: $1
  user:
    client-certificate: $p/$1.crt
    client-key: $p/$1.key
contexts:
- name: waoperator
  context: {cluster: waoperator, user: $1}
current-context: waoperator
EOF
}

# ---------------------------------------------------------------- processes

start() { # name command...
  local name=$1; shift
  if [ -f "$D/pids/$name" ] && kill -0 "$(cat "$D/pids/$name")" 2>/dev/null; then return; fi
  mkdir -p "$D/pids" "$D/logs"
  setsid "$@" >>"$D/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$D/pids/$name"
}

wait_for() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "$what not ready after ${secs}s; logs in $D/logs"; return 1; fi
    sleep 1
  done
}

stop() { # name
  local f=$D/pids/$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# ---------------------------------------------------------------- network

network() {
  if ! ip link show $dummy >/dev/null 2>&1; then
    # A bridge with no ports: the dummy module may be missing (containers cannot load modules).
    ip link add $dummy type bridge
    ip addr add $node_ip/32 dev $dummy
    ip link set $dummy up
    # Service IPs stay on this machine: what kube-proxy does not translate goes nowhere rather
    # than out through the default route.
    ip route add $service_cidr dev $dummy src $node_ip
  fi
  [ -n "$(recalled ip_forward)" ] || remember ip_forward "$(cat /proc/sys/net/ipv4/ip_forward)"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  mkdir -p "$D/cni/net.d" "$D/cni/ipam"
  cat >"$D/cni/net.d/10-waoperator.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "waoperator",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$D/cni/ipam",
              "ranges": [[{"subnet": "$pod_cidr", "gateway": "$gateway_ip"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# ---------------------------------------------------------------- containerd

containerd_up() {
  mkdir -p "$D/containerd"
  cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/waoperator/pause:1"
  # The machine lacks CAP_SYS_RESOURCE: runc must not lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$D/containerd/runc"
        SystemdCgroup = false
EOF
  start containerd containerd --config "$D/containerd/config.toml"
  wait_for containerd 30 ctr --address "$sock" version
}

pause_image() {
  if ctr_ images ls -q 2>/dev/null | grep -qx "localhost/waoperator/pause:1"; then return; fi
  (cd "$root/hack/tools/image" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$D/pause" ./pause \
    && CGO_ENABLED=0 go build -trimpath -o "$D/image-tool" .)
  "$D/image-tool" -o "$D/pause.tar" -tag localhost/waoperator/pause:1 -entrypoint /pause \
    -file "/pause=$D/pause:0755" >/dev/null
  ctr_ images import "$D/pause.tar" >/dev/null
}

# ---------------------------------------------------------------- control plane

control_plane() {
  local p=$D/pki
  mkdir -p "$D/etcd"
  start etcd "$bin/etcd" --data-dir "$D/etcd" --unsafe-no-fsync \
    --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
    --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
    --initial-cluster default=http://127.0.0.1:23801
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:23791 \
    --bind-address $node_ip --advertise-address $node_ip --secure-port $api_port \
    --service-cluster-ip-range $service_cidr \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --client-ca-file "$p/ca.crt" \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$p/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --cert-dir "$D/apiserver-certs" --allow-privileged=false
  wait_for kube-apiserver 90 kubectl get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$p/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$p/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 20257 \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --use-service-account-credentials --leader-elect=false \
    --service-cluster-ip-range $service_cidr \
    --node-monitor-grace-period 20s
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$p/scheduler.kubeconfig" \
    --authentication-kubeconfig "$p/scheduler.kubeconfig" \
    --authorization-kubeconfig "$p/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 20259 --leader-elect=false
}

# dns serves <service>.<namespace>.svc.cluster.local on the node IP, the kubelet's clusterDNS
# (test/cluster/cmd/cluster-dns: ClusterIP Services only). It watches Services as kube-proxy
# does, with kube-proxy's identity, whose role allows exactly that.
dns() {
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$D/cluster-dns" ./test/cluster/cmd/cluster-dns)
  start cluster-dns "$D/cluster-dns" --kubeconfig "$D/pki/proxy.kubeconfig" --listen $node_ip:53 --domain cluster.local
}

# ---------------------------------------------------------------- node

cgroups() {
  local c
  for c in /sys/fs/cgroup/*/; do
    [ -d "$c" ] || continue
    [ -L "${c%/}" ] && continue
    mkdir -p "$c$cgroup_root"
  done
  # cgroup v1 cpuset: a new group starts with no CPUs and no memory nodes, and its children
  # copy them; give it the root's.
  if [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/$cgroup_root/cpuset.cpus
    cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/$cgroup_root/cpuset.mems
  fi
}

kubelet_up() {
  local p=$D/pki
  mkdir -p "$D/kubelet" "$D/logs/pods"
  cat >"$D/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup_root
containerRuntimeEndpoint: unix://$sock
address: $node_ip
port: 20250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 20248
tlsCertFile: $p/kubelet-serving.crt
tlsPrivateKeyFile: $p/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$node_ip]
failSwapOn: false
podLogsDir: $D/logs/pods
nodeStatusUpdateFrequency: 4s
# A busy shared disk must not evict the test pods.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  start kubelet "$bin/kubelet" --config "$D/kubelet.yaml" --kubeconfig "$p/kubelet.kubeconfig" \
    --root-dir "$D/kubelet" --node-ip $node_ip --hostname-override $node
  wait_for "node $node" 120 node_ready
}

node_ready() {
  [ "$(kubectl get node $node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

kube_proxy_up() {
  cat >"$D/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $D/pki/proxy.kubeconfig}
hostnameOverride: $node
clusterCIDR: $pod_cidr
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:20256
metricsBindAddress: 127.0.0.1:20249
nodePortAddresses: ["$node_ip/32"]
# Leave the host's conntrack and route_localnet sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
  start kube-proxy "$bin/kube-proxy" --config "$D/kube-proxy.yaml"
  wait_for "kube-proxy's Service rules" 60 kube_proxy_synced
}

kube_proxy_synced() {
  iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -F 'default/kubernetes:https' >/dev/null
}

# ---------------------------------------------------------------- storage

storage() {
  local i
  mkdir -p "$D/volumes"
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
    for i in $(seq 1 "$pv_count"); do
      mkdir -p "$D/volumes/pv$i"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv$i}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  local: {path: $D/volumes/pv$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$node]}]
EOF
    done
  } | kubectl apply -f - >/dev/null
}

# ---------------------------------------------------------------- up / down

up() {
  [ "$(id -u)" = 0 ] || { log "needs root (containerd, kubelet, network)"; exit 1; }
  install_packages
  build_binaries
  mkdir -p "$D"
  if [ ! -f "$D/host-state" ]; then
    : >"$D/host-state"
    for d in /var/lib/kubelet /var/lib/cni /var/run/netns /run/containerd /var/log/pods /var/log/containers /etc/cni /opt/cni; do
      mark_created_dir "$d"
    done
    ls /var/run/netns 2>/dev/null | sed 's/^/netns_before=/' >>"$D/host-state" || true
  fi
  local t0=$SECONDS
  pki
  network
  cgroups
  containerd_up
  pause_image
  control_plane
  dns
  kubelet_up
  # After the node registered: kube-proxy that starts first gives up waiting for its Node, runs
  # without the node IPs, and exits when they appear (it expects a DaemonSet to restart it).
  kube_proxy_up
  wait_for "default ServiceAccount" 60 kubectl get serviceaccount default -n default
  storage
  log "up in $((SECONDS - t0))s; KUBECONFIG=$D/kubeconfig"
  echo "$D/kubeconfig"
}

down() {
  [ -d "$D" ] || return 0
  log "tearing down $D"
  # Workloads first: the kubelet and kube-proxy go before the runtime, so nothing recreates.
  stop kubelet
  stop kube-proxy
  if [ -S "$sock" ]; then
    local task
    for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
    for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks rm -f "$task" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  kill_shims
  if [ -x "$bin/kube-proxy" ]; then "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  stop cluster-dns
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  unmount_all
  remove_cgroups
  remove_network
  restore_dirs
  rm -rf "$D"
  log "down"
}

# kill_shims ends the runc shims (and what they still hold) started by this containerd: they
# name its socket on their command line. Never by process name: other containerds may exist.
kill_shims() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -F -- "$sock" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

unmount_all() {
  local m
  # Deepest first; the netns mounts our containerd made, then everything under $D.
  for m in $(awk '{print $5}' /proc/self/mountinfo | sort -r); do
    case "$m" in
      "$D"/*|"$D") umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true ;;
      /var/run/netns/cni-*|/run/netns/cni-*)
        if ! grep -qx "netns_before=$(basename "$m")" "$D/host-state" 2>/dev/null; then
          umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; rm -f "$m"
        fi ;;
    esac
  done
}

remove_cgroups() {
  local c
  for c in /sys/fs/cgroup/*/$cgroup_root; do
    [ -d "$c" ] || continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

remove_network() {
  local ipt t chain
  ip link del $bridge 2>/dev/null || true
  ip link del $dummy 2>/dev/null || true
  # iptables chains the kubelet, kube-proxy and the CNI plugins made (v4 and v6): first the
  # jumps from the built-in chains, then the chains.
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for t in filter nat mangle; do
      $ipt -t $t -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE-|CNI-)' | grep -vE '^-A (KUBE-|CNI-)' |
        while read -r _ rule; do eval "$ipt -t $t -D $rule" 2>/dev/null || true; done || true
      for chain in $($ipt -t $t -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\|CNI-[^ ]*\)$/\1/p'); do
        $ipt -t $t -F "$chain" 2>/dev/null || true
      done
      for chain in $($ipt -t $t -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\|CNI-[^ ]*\)$/\1/p'); do
        $ipt -t $t -X "$chain" 2>/dev/null || true
      done
    done
  done
  # A partition the node-loss test left behind if it was killed.
  while iptables -S INPUT 2>/dev/null | grep waoperator-partition >/dev/null; do
    rule=$(iptables -S INPUT | grep waoperator-partition | head -1 | sed 's/^-A //')
    eval "iptables -D $rule" || break
  done
  local fwd
  fwd=$(recalled ip_forward)
  [ -z "$fwd" ] || echo "$fwd" >/proc/sys/net/ipv4/ip_forward
}

restore_dirs() {
  local d
  # /var/log/containers holds the kubelet's links into our pod logs.
  find /var/log/containers -maxdepth 1 -lname "$D/*" -delete 2>/dev/null || true
  for d in $(recalled created; sed -n 's/^created=//p' "$D/host-state" 2>/dev/null); do
    rm -rf "$d"
  done
}

# verify_down proves a teardown: it lists whatever of the cluster is left on the host and fails
# if anything is. Run after down (make test-cluster does). It only reads.
verify_down() {
  local left=() pid f m c
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [ "$pid" = $$ ] && continue
    # Everything up starts names $D on its command line (data dirs, configs, the socket the
    # shims serve); container processes live in the waoperator cgroups.
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -F -- "$D/" >/dev/null ||
      grep -E ":/$cgroup_root(/|$)" "/proc/$pid/cgroup" >/dev/null 2>&1; then
      left+=("process $pid: $(tr '\0' ' ' <"$f" 2>/dev/null | cut -c1-120)")
    fi
  done
  while read -r m; do
    case "$m" in
      "$D"|"$D"/*|/run/netns/cni-*|/var/run/netns/cni-*) left+=("mount $m") ;;
    esac
  done < <(awk '{print $5}' /proc/self/mountinfo)
  while read -r m; do left+=("interface $m"); done < <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^($dummy|$bridge|waop)" || true)
  for c in /sys/fs/cgroup/*/$cgroup_root /sys/fs/cgroup/$cgroup_root; do
    [ -d "$c" ] && left+=("cgroup $c")
  done
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for t in filter nat mangle; do
      while read -r m; do left+=("$ipt -t $t $m"); done < <($ipt -t $t -S 2>/dev/null | grep -E '^-N (KUBE-|CNI-)|waoperator-partition' || true)
    done
  done
  [ ! -d "$D" ] || left+=("directory $D")
  while read -r m; do left+=("log link $m"); done < <(find /var/log/containers -maxdepth 1 -lname "$D/*" 2>/dev/null || true)
  if [ ${#left[@]} -gt 0 ]; then
    log "left behind after down:"
    printf '  %s\n' "${left[@]}" >&2
    return 1
  fi
  log "nothing left: no process, mount, interface, cgroup, iptables chain or directory of the cluster"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kubelet-stop) stop kubelet ;;     # node loss: the node turns NotReady, its pods keep running
  kubelet-start) kubelet_up ;;
  import) shift; for a in "$@"; do ctr_ images import "$a" >/dev/null; done ;;
  verify-down) verify_down ;;
  env) echo "KUBECONFIG=$D/kubeconfig NODE=$node NODE_IP=$node_ip GATEWAY_IP=$gateway_ip CLUSTER_DIR=$D" ;;
  *) echo "usage: $0 up|down|verify-down|import ARCHIVE...|kubelet-stop|kubelet-start|env" >&2; exit 2 ;;
esac
