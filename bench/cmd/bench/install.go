package main

import (
	"errors"
	"io"
	"os"
)

// installLikeAnImage copies the linked session binary to dst the way a container runtime
// extracts an image layer: writes of 32 KiB (io.Copy's buffer, which tar extraction goes
// through), then fsync.
//
// Why it matters for the memory figures: most of an idle session's RSS is pages of its own
// binary, and since Linux 6.x (large folios in the page cache, ext4 from 6.16, xfs earlier) a
// fault maps the whole folio it hits, 4 KiB to 1 MiB. How big the binary's folios are depends on
// how the file came into the page cache: the Go linker writes its output through a shared
// mapping, which left a layout that differed from build to build (a touch every 256 KiB mapped
// 69 KiB on average of one build, 104 KiB of another, same code); written by write(2) it is
// 64 KiB, the kernel's fault-around (with 1 MiB writes it was 1 MiB: the write size makes the
// folios); read back after eviction it is up to read_ahead_kb's folios (144 KiB on this
// machine). Without this step two builds of the same code differed by
// ~2 MiB of idle RSS, more than the changes being measured (docs/benchmarks.md, "Where the MiB
// go").
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
