package main

import (
	"errors"
	"io"
	"os"
)

// installLikeAnImage copies a linked binary (the session's, the manager's) to dst the way a
// container runtime extracts an image layer: writes of 32 KiB (io.Copy's buffer, which tar
// extraction goes through), then fsync.
//
// Why it matters for the memory figures: most of an idle session's RSS is pages of its own
// binary, and on current kernels (large folios in the page cache of ext4 and xfs; 6.18 here) a
// fault maps the whole folio it hits, 4 KiB to 1 MiB. How big the binary's folios are depends
// on how the file came into the page cache. The Go linker writes its output through a shared
// mapping, which left a layout that differed from build to build (a touch every 256 KiB mapped
// 69 KiB on average in main's build, 104 KiB in a branch's that changed one small package);
// written by write(2) in 32 KiB blocks it is 64 KiB, the kernel's fault-around (in 1 MiB
// blocks, 1 MiB: the write size makes the folios); read back after eviction, read_ahead_kb's
// folios (144 KiB on this machine). In one run the build with the larger folios had 2.5 MiB
// more of its binary resident at its highest reading than the other, more than the changes
// being measured (docs/benchmarks.md, "Fourth round").
func installLikeAnImage(linked, dst string) (err error) {
	src, err := os.Open(linked)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	// io.CopyBuffer through a plain writer: *os.File's ReadFrom would use copy_file_range,
	// which can share or splice pages instead of writing them.
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{src}, make([]byte, 32<<10)); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return os.Remove(linked)
}
