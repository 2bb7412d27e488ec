package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// nonRoot is the user the image runs as (distroless's "nonroot"); the session pods set the same
// UID in their security context.
const nonRoot = 65532

// Spec is one image to write.
type Spec struct {
	Output     string
	Tag        string
	Entrypoint string
	Env        []string
	Files      []File
	CACerts    string
	ZoneInfo   string
	Arch       string
	Created    time.Time
}

// File is one file of the application layer.
type File struct {
	Path   string // absolute path in the image
	Source string // path on the build machine
	Mode   int64
}

// entry is one tar entry, before sorting.
type entry struct {
	hdr  tar.Header
	data []byte
}

// Write assembles the image and writes the docker archive.
func (s Spec) Write() error {
	if s.Output == "" || s.Tag == "" || s.Entrypoint == "" {
		return errors.New("-o, -tag and -entrypoint are required")
	}
	ref, err := name.NewTag(s.Tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	base, err := s.baseEntries()
	if err != nil {
		return err
	}
	app, err := s.appEntries()
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, s.layer(base), s.layer(app))
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = s.Arch, "linux"
	cfg.Created = v1.Time{Time: s.Created}
	cfg.Config.Entrypoint = []string{s.Entrypoint}
	cfg.Config.User = fmt.Sprintf("%d:%d", nonRoot, nonRoot)
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = append([]string{
		"PATH=/",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		"ZONEINFO=/usr/share/zoneinfo",
	}, s.Env...)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: s.Created}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Output), 0o755); err != nil {
		return err
	}
	tmp := s.Output + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", s.Output, ref.Name(), digest)
	return os.Rename(tmp, s.Output)
}

// layer turns sorted entries into a gzip layer; compress/gzip with a fixed level and no
// header timestamp gives the same bytes for the same entries.
func (s Spec) layer(entries []entry) v1.Layer {
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime, h.Format = s.Created, tar.FormatPAX
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(err) // writing to memory
		}
		if _, err := tw.Write(e.data); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		panic(err) // an in-memory opener does not fail
	}
	return l
}

func dir(p string, mode int64) entry {
	return entry{hdr: tar.Header{Name: strings.TrimPrefix(p, "/") + "/", Typeflag: tar.TypeDir, Mode: mode}}
}

func file(p string, mode int64, data []byte) entry {
	return entry{hdr: tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeReg, Mode: mode}, data: data}
}

// baseEntries is what distroless/static holds that a Go program can need: CA roots, zone
// data, the user database and a writable /tmp.
func (s Spec) baseEntries() ([]entry, error) {
	certs, err := os.ReadFile(s.CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA roots (Debian package ca-certificates): %w", err)
	}
	out := []entry{
		dir("/etc", 0o755), dir("/etc/ssl", 0o755), dir("/etc/ssl/certs", 0o755),
		file("/etc/ssl/certs/ca-certificates.crt", 0o644, certs),
		file("/etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)),
		file("/etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", nonRoot)),
		dir("/tmp", 0o1777), dir("/home", 0o755),
		{hdr: tar.Header{Name: "home/nonroot/", Typeflag: tar.TypeDir, Mode: 0o700}},
		dir("/usr", 0o755), dir("/usr/share", 0o755),
	}
	zones, err := s.zoneEntries()
	if err != nil {
		return nil, fmt.Errorf("zone data (Debian package tzdata): %w", err)
	}
	return append(out, zones...), nil
}

// zoneEntries copies the zone database, without the duplicate "right" and "posix" trees.
func (s Spec) zoneEntries() ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(s.ZoneInfo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.ZoneInfo, p)
		target := path.Join("/usr/share/zoneinfo", filepath.ToSlash(rel))
		switch {
		case d.IsDir() && (rel == "right" || rel == "posix"):
			return filepath.SkipDir
		case d.IsDir():
			out = append(out, dir(target, 0o755))
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, entry{hdr: tar.Header{Name: strings.TrimPrefix(target, "/"), Typeflag: tar.TypeSymlink, Linkname: link, Mode: 0o777}})
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, file(target, 0o644, data))
		}
		return nil
	})
	return out, err
}

// appEntries are the given files, with the directories that hold them.
func (s Spec) appEntries() ([]entry, error) {
	var out []entry
	dirs := map[string]bool{}
	for _, f := range s.Files {
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, err
		}
		for d := path.Dir(f.Path); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			out = append(out, dir(d, 0o755))
		}
		out = append(out, file(f.Path, f.Mode, data))
	}
	return out, nil
}
