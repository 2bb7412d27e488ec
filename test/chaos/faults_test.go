package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

type faultKind string

const (
	killSession      faultKind = "kill-9"
	stopSession      faultKind = "sigstop"
	cutAPI           faultKind = "cut-api"
	deletePod        faultKind = "delete-pod"
	forceDeletePod   faultKind = "force-delete-pod"
	restartManager   faultKind = "restart-manager"
	restartAPIServer faultKind = "restart-apiserver"
	stallAPIServer   faultKind = "stall-apiserver"
	loseNode         faultKind = "lose-node"
)

// apiStall is how long the stall-apiserver fault freezes the API server: the 10 s that no
// session may drop WhatsApp over.
const apiStall = 10 * time.Second

// faultKinds in report order, with their weights in the random part of a schedule. Restarting
// the API server fails every session at once and costs the most time, so it is the rarest.
var faultKinds = []struct {
	kind   faultKind
	weight int
}{
	{killSession, 6},
	{stopSession, 4},
	{cutAPI, 4},
	{deletePod, 4},
	{forceDeletePod, 2},
	{restartManager, 3},
	{restartAPIServer, 1},
	{stallAPIServer, 1},
	{loseNode, 1},
}

// global faults hit the whole stack rather than one session.
// A lost node takes every session on it, so it is a wave of its own too.
func (k faultKind) global() bool {
	return k == restartManager || k == restartAPIServer || k == stallAPIServer || k == loseNode
}

type fault struct {
	n      int
	kind   faultKind
	target string        // the connection; empty for a global fault
	hold   time.Duration // how long the session stays stopped or cut, or the manager down

	// Set when the fault is injected.
	at     time.Time
	victim types.UID // the pod incarnation hit; it must not count as recovered
	// failover is fault → every affected connection Connected again.
	failover time.Duration
}

func (f *fault) String() string {
	s := fmt.Sprintf("#%d %s", f.n, f.kind)
	if f.target != "" {
		s += " " + f.target
	}
	if f.hold > 0 {
		s += fmt.Sprintf(" hold=%s", f.hold.Round(time.Millisecond))
	}
	return s
}

// newSchedule draws n faults. The first ones are every kind once, in a random order, so that a
// default run covers each; the rest are weighted draws.
func newSchedule(rng *rand.Rand, n int, conns []string) []*fault {
	total := 0
	for _, k := range faultKinds {
		total += k.weight
	}
	order := rng.Perm(len(faultKinds))
	out := make([]*fault, 0, n)
	for i := range n {
		var kind faultKind
		if i < len(order) {
			kind = faultKinds[order[i]].kind
		} else {
			w := rng.IntN(total)
			for _, k := range faultKinds {
				if w < k.weight {
					kind = k.kind
					break
				}
				w -= k.weight
			}
		}
		f := &fault{n: i + 1, kind: kind}
		if !kind.global() {
			f.target = conns[rng.IntN(len(conns))]
		}
		switch kind {
		case stopSession, cutAPI:
			// Past the Lease, so that the session must find on waking (or on reconnecting)
			// that it lost its Lease while it could not renew.
			f.hold = sessionConfig.LeaseDuration + 500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		case restartManager:
			f.hold = 200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))
		}
		out = append(out, f)
	}
	return out
}

// waves groups the schedule into runs of faults injected together: consecutive session faults
// on distinct connections share a wave, a global fault is a wave of its own. That keeps the
// schedule's order and lets a default run of 50 faults fit in a few minutes.
func waves(schedule []*fault) [][]*fault {
	var out [][]*fault
	var cur []*fault
	seen := map[string]bool{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, seen = nil, map[string]bool{}
	}
	for _, f := range schedule {
		if f.kind.global() || seen[f.target] {
			flush()
		}
		cur = append(cur, f)
		seen[f.target] = true
		if f.kind.global() {
			flush()
		}
	}
	flush()
	return out
}

func describeWave(w []*fault) string {
	parts := make([]string, len(w))
	for i, f := range w {
		parts[i] = f.String()
	}
	return strings.Join(parts, ", ")
}
