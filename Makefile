# Image of the manager and the session runtime (one image, two entry points).
IMG ?= controller:latest

# Kubernetes release the envtest control plane is built from: the k8s.io/kubernetes version that
# hack/tools/kube-apiserver/go.mod pins (written there once; hack/envtest-binaries.sh reads the same).
ENVTEST_K8S_VERSION ?= $(shell sed -n 's|^\(require\)\{0,1\}[[:space:]]*k8s.io/kubernetes v\([0-9][^ ]*\).*|\2|p' hack/tools/kube-apiserver/go.mod)

# Bounded fuzzing after the unit and envtest suites.
# FUZZ_TARGETS: space-separated list of package:FuzzName pairs, for example
#   FUZZ_TARGETS ?= ./internal/foo:FuzzParse ./api/v1alpha1:FuzzPhone
FUZZ_TARGETS ?= ./test/fakewa/internal/wire:FuzzFrameDecoder ./test/fakewa/internal/wire:FuzzNodeDecoder
FUZZ_TIME ?= 15s

# go test timeout: generous because envtest starts a real kube-apiserver on two shared cores.
TEST_TIMEOUT ?= 20m

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# CONTAINER_TOOL defines the container tool to be used for building images.
CONTAINER_TOOL ?= docker

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'.

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate ClusterRole and CustomResourceDefinition objects.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods for the API types, and the new SQLite store's schema snapshot.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."
	go run ./hack/sqlite-schema-snapshot

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when the committed CRD, RBAC or deepcopy files are stale.
	@if ! git diff --quiet --exit-code -- api config || \
	   [ -n "$$(git ls-files --others --exclude-standard -- api config)" ]; then \
		echo "ERROR: generated files under api/ or config/ are out of date." >&2; \
		echo "Run 'make manifests generate' and commit the result. Differences:" >&2; \
		git --no-pager diff --stat -- api config >&2; \
		git ls-files --others --exclude-standard -- api config | sed 's/^/  untracked: /' >&2; \
		exit 1; \
	fi
	@echo "generated files are up to date"

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply the fixes it can.
	"$(GOLANGCI_LINT)" run --fix

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for envtest into bin/k8s/<version> and print the dir (cold: ~12 min).
	@ENVTEST_DIR="$(ENVTEST_DIR)" hack/envtest-binaries.sh kube-apiserver etcd

# Gomega's default Eventually bound is 1 s of wall clock, which a shared CI machine at load 20
# misses while the condition is on its way; a test that needs another bound says so itself.
export GOMEGA_DEFAULT_EVENTUALLY_TIMEOUT ?= 10s

.PHONY: test
test: manifests generate fmt vet envtest kustomize helm ## Run unit, envtest and Postgres suites, then bounded fuzzing of FUZZ_TARGETS.
	@# A throwaway PostgreSQL on loopback for the session's Postgres store tests (installed from
	@# Debian packages when missing); stopped however the tests end.
	@set -e; pg_log="$$(mktemp)"; \
	dsn="$$(hack/postgres-test.sh 2>"$$pg_log")" || { cat "$$pg_log" >&2; exit 1; }; \
	pg_dir="$$(sed -n 's/^postgres test server in \([^ ]*\).*/\1/p' "$$pg_log")"; \
	trap 'hack/postgres-test.sh stop "$$pg_dir" >/dev/null 2>&1 || true' EXIT; \
	assets="$$(ENVTEST_DIR="$(ENVTEST_DIR)" hack/envtest-binaries.sh kube-apiserver etcd)"; \
	echo "go test -tags postgres ./... (KUBEBUILDER_ASSETS=$$assets)"; \
	KUBEBUILDER_ASSETS="$$assets" WAOPERATOR_TEST_POSTGRES_DSN="$$dsn" \
		go test -tags postgres ./... -timeout $(TEST_TIMEOUT) -coverprofile cover.out
	# The fakewa build of the endpoint seam (tests prove the default build cannot use it).
	go test -tags fakewa ./internal/waendpoint/...
	@set -e; for target in $(FUZZ_TARGETS); do \
		pkg="$${target%%:*}"; name="$${target##*:}"; \
		echo "fuzzing $$name in $$pkg for $(FUZZ_TIME)"; \
		go test -run '^$$' -fuzz="^$${name}$$" -fuzztime=$(FUZZ_TIME) "$$pkg"; \
	done

# The envtest suites: each package's entry point that starts a real kube-apiserver and etcd (or
# the whole local stack). test-unit skips exactly these; it runs with KUBEBUILDER_ASSETS pointing
# nowhere, so a new suite missing from this list fails there loudly instead of slowing it down.
E2E_SUITES = TestE2E|TestLocalStackWithFakeWhatsApp
CHAOS_SUITES = TestChaos|TestChaosEvents
# Packages whose TestMain starts a control plane (test/install) or builds the image (test/image)
# for every test in them.
ENVTEST_PACKAGES = /test/install$$|/test/image$$
ENVTEST_SUITES = TestAPIAdmission|TestControllers|TestLocalRunner|TestPlugin|TestSession|$(E2E_SUITES)|$(CHAOS_SUITES)
# The session's process-kill tests: each runs the session's client in child processes and
# SIGKILLs them in the middle of a write, as a node failure would; seconds each, the longest
# tests of test-unit were it to run them. test-chaos runs them (and make test, as every test).
KILL_TESTS = TestOutboxSendsEveryMessageOnceThroughThreeKills|TestInboxLosesNothingWhenTheProcessDiesAroundTheCommit

# How many test binaries test-unit builds or runs at once (go test's -p; its default is the core count).
UNIT_PARALLEL ?= 4

.PHONY: test-unit
test-unit: ## Fast tier: every test that needs no control plane (pure logic, fakewa with the real whatsmeow client, SQLite). Warm: under 30 s.
	@# Packages that hold nothing but envtest suites are not linked at all (hack/unit-packages.sh);
	@# the files of a suite that shares its package with unit tests say //go:build !unit, so
	@# those test binaries link no envtest. Most of the tier's CPU time is linking test binaries:
	@# -ldflags=-w leaves out their DWARF (a debugger's, not a test's; about a fifth of each link),
	@# and -p lets links go on while other binaries' tests wait on timers and sockets.
	KUBEBUILDER_ASSETS=/nonexistent/test-unit-needs-no-control-plane \
		go test -tags unit $$(hack/unit-packages.sh '$(ENVTEST_SUITES)|$(KILL_TESTS)' '$(ENVTEST_PACKAGES)') \
		-skip '^($(ENVTEST_SUITES)|$(KILL_TESTS))$$' -ldflags=-w -p $(UNIT_PARALLEL)

.PHONY: test-integration
test-integration: envtest ## The envtest suites (controller, admission, session runtime, local runner, plugin, installers), without e2e and chaos.
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./... -run '^($(ENVTEST_SUITES))$$' -skip '^($(E2E_SUITES)|$(CHAOS_SUITES))$$' -timeout $(TEST_TIMEOUT)
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test $$(go list ./... | grep -E '$(ENVTEST_PACKAGES)') -timeout $(TEST_TIMEOUT)

.PHONY: test-e2e
test-e2e: envtest ## End to end: `make run FAKE_WHATSAPP=1`'s stack driven by kubectl and the fake phone.
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./test/e2e/... ./cmd/localdev/... -run '^($(E2E_SUITES))$$' -count=1 -timeout $(TEST_TIMEOUT)

.PHONY: test-chaos
test-chaos: envtest ## The seeded chaos suite (kills, stops, API cuts, restarts) with its invariants, and the session's process-kill tests.
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./test/chaos/... -run '^($(CHAOS_SUITES))$$' -count=1 -timeout $(TEST_TIMEOUT) -v
	go test ./internal/session/whatsapp -run '^($(KILL_TESTS))$$' -count=1 -timeout $(TEST_TIMEOUT)

.PHONY: bench
bench: ## Benchmarks on the embedded control plane, local runner and fakewa (not in make test; BENCH_QUICK=1: small counts). Writes bench/results.json.
	@set -e; assets="$$(ENVTEST_DIR="$(ENVTEST_DIR)" hack/envtest-binaries.sh kube-apiserver etcd)"; \
	KUBEBUILDER_ASSETS="$$assets" BENCH_QUICK="$(BENCH_QUICK)" go run ./bench/cmd/bench

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build every entry point under cmd/ into bin/.
	@set -e; for dir in cmd/*/; do \
		[ -d "$$dir" ] || continue; \
		name=$$(basename "$$dir"); \
		echo "building bin/$$name"; \
		CGO_ENABLED=0 go build -o "bin/$$name" "./$$dir"; \
	done

# make run LOCAL=1: the embedded local control plane even when a cluster is reachable.
# make run FAKE_WHATSAPP=1: local, and sessions talk to an in-process fake WhatsApp (offline).
LOCAL ?=
FAKE_WHATSAPP ?=

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the current cluster, or with none reachable (or LOCAL=1) a local one with local session pods.
	@LOCAL="$(LOCAL)" FAKE_WHATSAPP="$(FAKE_WHATSAPP)" ENVTEST_DIR="$(ENVTEST_DIR)" hack/run.sh

.PHONY: docker-build
docker-build: ## Build the container image (needs a container tool).
	$(CONTAINER_TOOL) build -t ${IMG} .

.PHONY: image
image: ## Build the image without a container engine or registry into bin/image/whatsapp-operator.tar (docker archive; `ctr images import`, `docker load`).
	IMG="$(IMG)" hack/image.sh

.PHONY: docker-push
docker-push: ## Push the container image.
	$(CONTAINER_TOOL) push ${IMG}

.PHONY: build-installer
build-installer: manifests generate kustomize ## Render config/default with IMG into dist/install.yaml (CRDs, RBAC, manager).
	mkdir -p dist
	cd config/manager && "$(KUSTOMIZE)" edit set image controller=${IMG}
	"$(KUSTOMIZE)" build config/default > dist/install.yaml

.PHONY: helm-sync
helm-sync: manifests ## Copy the CRDs, the manager's ClusterRole, the admission policy and the alerts into the Helm chart (a test fails while they differ).
	rm -f charts/whatsapp-operator/crds/*.yaml
	cp config/crd/bases/*.yaml charts/whatsapp-operator/crds/
	cp config/rbac/role.yaml charts/whatsapp-operator/files/manager-role.yaml
	cp config/admission/policy.yaml charts/whatsapp-operator/files/admission-policy.yaml
	sed -n '/^spec:/,$$p' config/prometheus/prometheus_rule.yaml | tail -n +2 | sed 's/^  //' \
		> charts/whatsapp-operator/files/alerts.yaml

.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart.
	"$(HELM)" lint --strict charts/whatsapp-operator

.PHONY: helm-template
helm-template: helm ## Render the Helm chart with IMG into dist/chart.yaml.
	mkdir -p dist
	img='$(IMG)'; "$(HELM)" template whatsapp-operator charts/whatsapp-operator --namespace whatsapp-operator-system \
		--set image.repository="$${img%:*}" --set image.tag="$${img##*:}" > dist/chart.yaml

##@ Real cluster

# A single-node Kubernetes (kubelet, containerd, CNI, kube-proxy, controller manager, scheduler)
# on this machine, as root: hack/cluster.sh. Cold: ~25 min of builds on two busy cores.
.PHONY: cluster-up
cluster-up: ## Start the real single-node cluster (builds kubelet etc. from Go modules, installs containerd/runc/CNI from Debian); prints its kubeconfig.
	@ENVTEST_DIR="$(ENVTEST_DIR)" hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the real cluster and restore the host (processes, mounts, cgroups, iptables, interfaces).
	@ENVTEST_DIR="$(ENVTEST_DIR)" hack/cluster.sh down

.PHONY: test-cluster
test-cluster: ## The operator installed by Helm and dist/install.yaml on the real cluster, driven with kubectl (test/cluster); then the cluster is torn down and the teardown verified.
	@# The cluster goes down however the suite ends (an interrupt included), and verify-down fails
	@# the target if any process, mount, interface, cgroup or iptables chain of it is left.
	@export ENVTEST_DIR="$(ENVTEST_DIR)" LOCALBIN="$(LOCALBIN)"; \
	trap 'hack/cluster.sh down; exit 130' INT TERM; rc=0; \
	{ hack/cluster.sh up >/dev/null && \
	  { command -v zbarimg >/dev/null || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zbar-tools >/dev/null; }; } && \
	  go test -tags cluster ./test/cluster/ -count=1 -timeout 40m -v -ginkgo.v; } || rc=$$?; \
	hack/cluster.sh down || rc=1; \
	hack/cluster.sh verify-down || rc=1; \
	exit $$rc

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install the CRDs into the cluster in the current kubeconfig.
	$(KUBECTL) apply --server-side --force-conflicts -f config/crd/bases

.PHONY: uninstall
uninstall: manifests ## Uninstall the CRDs (and with them every WhatsAppConnection). Call with ignore-not-found=true to ignore missing ones.
	$(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f config/crd/bases

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

ENVTEST_DIR ?= $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)

## Tool Binaries
KUBECTL ?= kubectl
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
KUSTOMIZE ?= $(LOCALBIN)/kustomize
HELM ?= $(LOCALBIN)/helm

## Tool Versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# kustomize and helm are built from their own modules under hack/tools (their dependencies stay
# out of the operator's go.mod); the versions are the ones those go.mod files pin.
KUSTOMIZE_VERSION ?= $(shell sed -n 's|.*sigs.k8s.io/kustomize/kustomize/v5 \(v[^ ]*\).*|\1|p' hack/tools/kustomize/go.mod)
HELM_VERSION ?= $(shell sed -n 's|.*helm.sh/helm/v3 \(v[^ ]*\).*|\1|p' hack/tools/helm/go.mod)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION) ## Install controller-gen into bin/ if necessary.
	@ln -sf "$(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION)" "$(CONTROLLER_GEN)"
$(CONTROLLER_GEN)-$(CONTROLLER_TOOLS_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION) ## Install golangci-lint into bin/ if necessary.
	@ln -sf "$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION)" "$(GOLANGCI_LINT)"
$(GOLANGCI_LINT)-$(GOLANGCI_LINT_VERSION): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE)-$(KUSTOMIZE_VERSION) ## Build kustomize from hack/tools/kustomize into bin/ if necessary.
	@ln -sf "$(KUSTOMIZE)-$(KUSTOMIZE_VERSION)" "$(KUSTOMIZE)"
$(KUSTOMIZE)-$(KUSTOMIZE_VERSION): | $(LOCALBIN)
	$(call go-build-tool,kustomize,$@,sigs.k8s.io/kustomize/kustomize/v5)

.PHONY: helm
helm: $(HELM)-$(HELM_VERSION) ## Build helm from hack/tools/helm into bin/ if necessary (cold: a few minutes).
	@ln -sf "$(HELM)-$(HELM_VERSION)" "$(HELM)"
$(HELM)-$(HELM_VERSION): | $(LOCALBIN)
	$(call go-build-tool,helm,$@,helm.sh/helm/v3/cmd/helm)

# go-build-tool builds a command from the tools module hack/tools/<name>, at the version its
# go.mod pins.
# $1 - tools module directory under hack/tools
# $2 - output binary
# $3 - package to build
define go-build-tool
@echo "building $(notdir $(2))"
cd hack/tools/$(1) && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$(2)" $(3)
endef

# go-install-tool will 'go install' any package with a custom target and the name of the binary.
# The binary is kept under a versioned name, so a version bump installs the new one.
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@set -e; \
package=$(2)@$(3); \
echo "installing $${package}"; \
rm -f "$(1)"; \
GOBIN="$(LOCALBIN)" go install "$${package}"; \
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)"
endef
