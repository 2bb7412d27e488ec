# Build the manager and session binaries
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Copy the module files first so the dependency download is cached between source edits.
COPY go.mod go.mod
COPY go.sum go.sum
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/

# Static binaries: the final image has no libc. Only what ships is built: the manager and the
# session (the session pods run this same image with /session as their command). cmd/localdev,
# cmd/kubectl-whatsapp and the fake WhatsApp server are development tools and stay out; the
# list is the one in hack/image.sh, and test/image fails when the two differ.
RUN mkdir -p /out && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/manager ./cmd/session

# distroless: no shell, no package manager, non-root by default.
# Refer to https://github.com/GoogleContainerTools/distroless for more details
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/ /
USER 65532:65532

ENTRYPOINT ["/manager"]
