package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type results struct {
	Mode     string    `json:"mode"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	CPUs     int       `json:"cpus"`
	// Whatsmeow is the go.mau.fi/whatsmeow version in the measured session binary: the
	// session's speed and memory are mostly whatsmeow's.
	Whatsmeow string `json:"whatsmeow,omitempty"`
	// Load is /proc/loadavg at the start of each figure: the machine is shared, and a figure
	// taken under another helper's test run is read with that in mind.
	Load    map[string]string `json:"loadavg,omitempty"`
	Sizes   sizes             `json:"sizes"`
	Figures []figure          `json:"figures"`
	Errors  []string          `json:"errors,omitempty"`
}

// figure is one row of the table.
type figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target"`
	Pass   bool    `json:"pass"`
	// Detail is what the value is made of: the baseline, the percentiles, the sample size.
	Detail string         `json:"detail"`
	Extra  map[string]any `json:"extra,omitempty"`
}

func (r *results) add(f figure) {
	r.Figures = append(r.Figures, f)
	mark := "ok"
	if !f.Pass {
		mark = "MISSED"
	}
	fmt.Fprintf(os.Stderr, "   %s = %.3g %s (target %s) %s — %s\n", f.Name, f.Value, f.Unit, f.Target, mark, f.Detail)
}

func (r *results) noteLoad(phase string) {
	if r.Load == nil {
		r.Load = map[string]string{}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Load[phase] = strings.TrimSpace(string(b))
	}
}

func (r *results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

func printTable(w io.Writer, r *results) {
	_, _ = fmt.Fprintf(w, "\nwhatsapp-operator benchmarks (%s run, %d CPUs, %s, whatsmeow %s): %s\n\n",
		r.Mode, r.CPUs, r.Started.Format(time.RFC3339), r.Whatsmeow, r.Command)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "figure\tvalue\ttarget\tresult\tdetail")
	for _, f := range r.Figures {
		res := "ok"
		if !f.Pass {
			res = "MISSED"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", f.Name, fmtValue(f.Value), f.Unit, f.Target, res, f.Detail)
	}
	_ = tw.Flush()
	for _, e := range r.Errors {
		_, _ = fmt.Fprintln(w, "error:", e)
	}
}

// whatsmeowVersion reads the whatsmeow version from the binary's build information.
func whatsmeowVersion(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, d := range info.Deps {
		if d.Path == "go.mau.fi/whatsmeow" {
			if d.Replace != nil {
				return d.Version + " => " + d.Replace.Path + " " + d.Replace.Version
			}
			return d.Version
		}
	}
	return "not linked"
}

func fmtValue(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// percentile is nearest-rank: with 20 samples p99 is the largest, which is what a reader of
// "p99 of 20 trials" should assume.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
