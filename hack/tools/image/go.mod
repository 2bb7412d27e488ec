// Module image assembles the operator's container image without a container engine or a
// registry (hack/image.sh, make image). It is kept out of the main module so
// go-containerregistry's dependencies do not pin the operator's.
module github.com/waoperator/whatsapp-operator/hack/tools/image

go 1.26.8

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
