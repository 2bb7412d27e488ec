// Command image assembles a container image from static binaries and writes it as a docker
// archive (what `docker load` and `ctr images import` read), with no container engine and no
// registry: the operator's image for the real-cluster tests and for users without Docker.
//
// The image is distroless-like: a base layer with the CA roots and the zone database of the
// build machine (Debian's ca-certificates and tzdata), /etc/passwd and /etc/group naming the
// non-root user 65532, and an empty /tmp; then one layer with the given files. Every timestamp
// is SOURCE_DATE_EPOCH (default 0) and entries are sorted, so the same inputs give the same
// image digest.
//
//	image -o bin/image.tar -tag whatsapp-operator:dev -entrypoint /manager \
//	  -file /manager=bin/image/manager:0755 -file /session=bin/image/session:0755
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var (
		spec  Spec
		files multiFlag
		env   multiFlag
	)
	flag.StringVar(&spec.Output, "o", "", "Path of the docker archive to write.")
	flag.StringVar(&spec.Tag, "tag", "", "Image name and tag, e.g. whatsapp-operator:dev.")
	flag.StringVar(&spec.Entrypoint, "entrypoint", "", "Path of the default entry point in the image.")
	flag.StringVar(&spec.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle of the build machine.")
	flag.StringVar(&spec.ZoneInfo, "zoneinfo", "/usr/share/zoneinfo", "Zone database of the build machine.")
	flag.StringVar(&spec.Arch, "arch", runtime.GOARCH, "Architecture the binaries were built for.")
	flag.Var(&files, "file", "IMAGE_PATH=SOURCE[:MODE] (octal, default 0644); repeat.")
	flag.Var(&env, "env", "KEY=VALUE added to the image's environment; repeat.")
	flag.Parse()

	var err error
	if spec.Created, err = sourceDateEpoch(); err == nil {
		spec.Files, err = parseFiles(files)
	}
	spec.Env = env
	if err == nil {
		err = spec.Write()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func parseFiles(args []string) ([]File, error) {
	var out []File
	for _, a := range args {
		dst, src, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(dst, "/") || src == "" {
			return nil, fmt.Errorf("-file %q: want /IMAGE_PATH=SOURCE[:MODE]", a)
		}
		mode := int64(0o644)
		if i := strings.LastIndex(src, ":"); i >= 0 {
			m, err := strconv.ParseInt(src[i+1:], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("-file %q: mode: %w", a, err)
			}
			src, mode = src[:i], m
		}
		out = append(out, File{Path: dst, Source: src, Mode: mode})
	}
	return out, nil
}
