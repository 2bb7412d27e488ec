package memtrim

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// Result is what a Trim did: the process's resident memory before and after, in KiB
// (/proc/self/status VmRSS, RssAnon, RssFile), and how many mappings it unmapped.
type Result struct {
	Before, After Resident
	Mappings      int
	// Unmapped is how much of those mappings was resident (KiB) when they were unmapped; for a
	// TrimBinary after the first trim, which does not read smaps, the drop of RssFile.
	Unmapped int64
}

// Resident is one reading of /proc/self/status.
type Resident struct {
	RSS, Anon, File int64 // KiB
}

// mapping is one region of /proc/self/smaps.
type mapping struct {
	lo, hi    uintptr
	perms     string
	path      string
	anonymous int64 // KiB of the region that are private copies (written, or never file-backed)
	rss       int64 // KiB resident
}

// droppable returns the regions of exe that can be unmapped without changing what the process
// reads from them: read-only (code r-xp, read-only data r--p), private, and holding no page of
// their own. A region with anonymous pages was written once (a PIE binary's relocated
// read-only data, made read-only after the loader wrote it): dropping those pages would bring
// back the file's unrelocated bytes, so such a region is never touched.
func droppable(smaps io.Reader, exe string) ([]mapping, error) {
	var out []mapping
	var cur *mapping
	flush := func() {
		if cur != nil && cur.path == exe && (cur.perms == "r-xp" || cur.perms == "r--p") && cur.anonymous == 0 {
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if m, ok := header(f); ok {
			flush()
			cur = &m
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Anonymous:":
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kib != 0 {
				cur.anonymous = max(kib, 1) // unreadable counts as written
			}
		case "Rss:":
			cur.rss, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	flush()
	return out, sc.Err()
}

// header parses "lo-hi perms offset dev inode [path]"; field lines ("Rss: 4 kB") are not one.
func header(f []string) (mapping, bool) {
	if len(f) < 5 || strings.HasSuffix(f[0], ":") {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	l, err1 := strconv.ParseUint(lo, 16, 64)
	h, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || h <= l {
		return mapping{}, false
	}
	m := mapping{lo: uintptr(l), hi: uintptr(h), perms: f[1]}
	if len(f) >= 6 {
		m.path = strings.Join(f[5:], " ")
	}
	return m, true
}

// resident parses /proc/self/status's VmRSS, RssAnon and RssFile, without allocating: it runs
// at every periodic trim.
func resident(status []byte) Resident {
	var r Resident
	for len(status) > 0 {
		line := status
		if i := bytes.IndexByte(status, '\n'); i >= 0 {
			line, status = status[:i], status[i+1:]
		} else {
			status = nil
		}
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &r.RSS
		case bytes.HasPrefix(line, []byte("RssAnon:")):
			dst = &r.Anon
		case bytes.HasPrefix(line, []byte("RssFile:")):
			dst = &r.File
		default:
			continue
		}
		var v int64
		digits := false
		for _, c := range line[bytes.IndexByte(line, ':')+1:] {
			if c >= '0' && c <= '9' {
				v, digits = v*10+int64(c-'0'), true
			} else if digits {
				break
			}
		}
		*dst = v
	}
	return r
}
