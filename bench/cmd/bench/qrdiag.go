package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// apiRequests is a reading of the API server's own request counters (its /metrics):
// apiserver_request_total and the summed latency, by "VERB resource[/subresource]". Two readings
// around a round say which requests the round cost and how long the API server took over them,
// whoever made them (the controller talks to the API server directly, not through the proxy).
type apiRequests struct {
	count   map[string]float64
	seconds map[string]float64
	// gcCycles is how many collections the API server's Go runtime has finished: each marks its
	// whole heap (~110 MiB here), 0.3–0.5 CPU-s, and whether one falls into a round or not is most
	// of the round-to-round spread of time to QR.
	gcCycles float64
}

func readAPIRequests(ctx context.Context, cfg *rest.Config) (apiRequests, error) {
	out := apiRequests{count: map[string]float64{}, seconds: map[string]float64{}}
	body, err := getFromAPIServer(ctx, cfg, "/metrics", 10*time.Second)
	if err != nil {
		return out, err
	}
	defer func() { _ = body.Close() }()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_count "); ok {
			out.gcCycles, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			continue
		}
		var into map[string]float64
		switch {
		case strings.HasPrefix(line, "apiserver_request_total{"):
			into = out.count
		case strings.HasPrefix(line, "apiserver_request_duration_seconds_sum{"):
			into = out.seconds
		default:
			continue
		}
		labels, value, ok := splitSample(line)
		if !ok {
			continue
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		if code := labels["code"]; code != "" && !strings.HasPrefix(code, "2") {
			key += " " + code
		}
		into[key] += value
	}
	return out, sc.Err()
}

// splitSample parses `name{a="b",c="d"} value`.
func splitSample(line string) (map[string]string, float64, bool) {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return nil, 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
	if err != nil {
		return nil, 0, false
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(line[open+1:end], ",") {
		k, val, ok := strings.Cut(kv, "=")
		if ok {
			labels[k] = strings.Trim(val, `"`)
		}
	}
	return labels, v, true
}

// since is what happened between b and a (a the later reading), largest count first, as
// "VERB resource count (ms in all)"; WATCH requests are left out (their latency is their life).
func (a apiRequests) since(b apiRequests) string {
	type row struct {
		key        string
		count, sec float64
	}
	var rows []row
	total := 0.0
	for k, v := range a.count {
		if d := v - b.count[k]; d > 0 && !strings.HasPrefix(k, "WATCH") {
			rows = append(rows, row{k, d, a.seconds[k] - b.seconds[k]})
			total += d
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].count > rows[j].count })
	parts := []string{fmt.Sprintf("%.0f requests", total)}
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.0f (%.0f ms)", r.key, r.count, r.sec*1000))
	}
	return strings.Join(parts, ", ")
}

// stackCPUNow is the CPU used so far by this process (controller, runner, proxy, fakewa) and
// its children: the API server, etcd and the session processes the runner started. One scan of
// /proc, cheap enough to read at each QR event.
func stackCPUNow() time.Duration {
	self := os.Getpid()
	total, _, _ := procCPU("/proc/self/stat")
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		if cpu, _, ppid := procCPU(path); ppid == self {
			total += cpu
		}
	}
	return total
}

// controllerTimes is a reading of the in-process controller's own histograms: how long
// resources waited in its work queue for a worker, and how long its passes took.
type controllerTimes struct {
	queued, working   time.Duration
	queuedN, workingN float64
}

func readControllerTimes() controllerTimes {
	var t controllerTimes
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return t
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			isOurs := false
			for _, l := range m.GetLabel() {
				if (l.GetName() == "name" || l.GetName() == "controller") && l.GetValue() == "whatsappconnection" {
					isOurs = true
				}
			}
			if !isOurs {
				continue
			}
			h := m.GetHistogram()
			switch f.GetName() {
			case "workqueue_queue_duration_seconds":
				t.queued += time.Duration(h.GetSampleSum() * float64(time.Second))
				t.queuedN += float64(h.GetSampleCount())
			case "controller_runtime_reconcile_time_seconds":
				t.working += time.Duration(h.GetSampleSum() * float64(time.Second))
				t.workingN += float64(h.GetSampleCount())
			}
		}
	}
	return t
}

// since says, between b and a (a the later reading), how many passes ran, how long each waited
// in the queue and took on average.
func (a controllerTimes) since(b controllerTimes) string {
	n := a.workingN - b.workingN
	q := a.queuedN - b.queuedN
	if n <= 0 || q <= 0 {
		return "no passes"
	}
	return fmt.Sprintf("%.0f passes, each waited %.0f ms for a worker and took %.0f ms (mean)", n,
		float64((a.queued-b.queued).Milliseconds())/q, float64((a.working-b.working).Milliseconds())/n)
}
