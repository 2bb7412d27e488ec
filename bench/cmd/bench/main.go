// Command bench measures the operator on one machine (issue 7): reconcile throughput against the
// API server's own floor, time to QR, failover, session and manager memory, and the API writes
// of idle sessions. It runs the embedded control plane (envtest binaries), the controller, the
// local pod runner and the fake WhatsApp server, prints a table and writes bench/results.json.
// docs/benchmarks.md explains each method. `make bench` runs it; BENCH_QUICK=1 uses small counts.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// sizes are the counts of one run; quick mode exists so a change can be checked in a minute or
// two, not to produce figures worth recording.
type sizes struct {
	Throughput int // resources for the throughput figure
	// ThroughputPairs is how many floor-then-controller pairs the throughput figure takes the
	// median ratio of.
	ThroughputPairs int
	QR              int           // resources applied at once for time to QR
	QRRounds        int           // times the QR resources are applied (each a sample of the figure)
	Idle            int           // connected idle sessions for memory and API writes
	ProcessTrials   int           // sessions started and paired one at a time for the per-process figures
	IdleWindow      time.Duration // how long API writes are counted
	FailoverTrials  int
	ManagerObjects  int // resources the separate manager process reconciles
}

var (
	fullSizes  = sizes{Throughput: 500, ThroughputPairs: 3, QR: 20, QRRounds: 3, Idle: 10, ProcessTrials: 10, IdleWindow: 5 * time.Minute, FailoverTrials: 20, ManagerObjects: 1000}
	quickSizes = sizes{Throughput: 100, ThroughputPairs: 1, QR: 10, QRRounds: 2, Idle: 5, ProcessTrials: 3, IdleWindow: 60 * time.Second, FailoverTrials: 3, ManagerObjects: 200}
)

func main() {
	var o options
	flag.StringVar(&o.ModuleRoot, "module-root", ".", "Root of the operator's Go module (cmd/session, cmd/manager, config/crd).")
	flag.StringVar(&o.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"),
		"Directory with kube-apiserver and etcd, as hack/envtest-binaries.sh prints it (default $KUBEBUILDER_ASSETS).")
	flag.StringVar(&o.Out, "out", "bench/results.json", "Where the results are written.")
	flag.StringVar(&o.Only, "only", "", "Comma-separated figures to run (throughput,process,qr,idle,failover,manager,events); default all.")
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "Small counts (default $BENCH_QUICK=1).")
	verbose := flag.Bool("v", false, "Log the controller, runner and manager at info level.")
	flag.Parse()

	level := zapcore.ErrorLevel
	if *verbose {
		level = zapcore.InfoLevel
	}
	ctrl.SetLogger(zap.New(zap.Level(level)))
	if o.Assets == "" {
		fmt.Fprintln(os.Stderr, "bench: -assets (or $KUBEBUILDER_ASSETS) must name the kube-apiserver and etcd directory; `make bench` passes it")
		os.Exit(2)
	}

	o.Quick = *quick
	o.Sizes = fullSizes
	if o.Quick {
		o.Sizes = quickSizes
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		// The bench process's own CPU (floor client, in-process controller, proxy), for `go tool pprof`.
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	res, err := run(ctx, o)
	if res != nil {
		res.Finished = time.Now().UTC()
		printTable(os.Stdout, res)
		if werr := res.write(o.Out); werr != nil {
			fmt.Fprintln(os.Stderr, "bench: writing results:", werr)
		} else {
			fmt.Println("results written to", o.Out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	ModuleRoot, Assets, Out, Only string
	Quick                         bool
	Sizes                         sizes
}

func (o options) wants(name string) bool {
	if o.Only == "" {
		return true
	}
	for _, n := range splitComma(o.Only) {
		if n == name {
			return true
		}
	}
	return false
}

// run measures each figure in turn; a figure that fails is recorded with its error and the
// others still run, so one flaky part does not throw away a 15-minute run.
func run(ctx context.Context, o options) (*results, error) {
	res := &results{
		Mode:    map[bool]string{true: "quick", false: "full"}[o.Quick],
		Started: time.Now().UTC(),
		Command: commandLine(o.Quick),
		CPUs:    runtime.NumCPU(),
		Sizes:   o.Sizes,
	}
	bins, err := buildBinaries(ctx, o.ModuleRoot)
	if err != nil {
		return res, err
	}
	defer bins.cleanup()
	res.Whatsmeow = whatsmeowVersion(bins.session)

	type phase struct {
		name string
		fn   func(context.Context, options, *binaries, *results) error
	}
	var failed []string
	for _, p := range []phase{
		{"throughput", benchThroughput},
		{"qr", benchSessions}, // per-process figures, time to QR, then session memory and idle API writes on the same stack
		{"failover", benchFailover},
		{"manager", benchManagerMemory},
		{"events", benchEvents},
		{"send", benchSend},
	} {
		if !o.wants(p.name) && (p.name != "qr" || !o.wants("idle") && !o.wants("process")) {
			continue
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "== %s (%s)\n", p.name, time.Now().Format(time.TimeOnly))
		if err := p.fn(ctx, o, bins, res); err != nil {
			fmt.Fprintf(os.Stderr, "== %s failed: %v\n", p.name, err)
			res.Errors = append(res.Errors, p.name+": "+err.Error())
			failed = append(failed, p.name)
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("failed: %v", failed)
	}
	return res, nil
}

func commandLine(quick bool) string {
	if quick {
		return "BENCH_QUICK=1 make bench"
	}
	return "make bench"
}
