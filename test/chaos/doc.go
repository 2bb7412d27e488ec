// Package chaos holds the operator's chaos suite (chaos_test.go): the local stack composed
// in-process (envtest control plane, the controller in a manager, the local pod runner with
// sessions built for test/fakewa, fakewa itself) so that each part can be killed or restarted,
// and a seeded random schedule of faults checked against the "exactly one live client"
// invariants. CHAOS_SEED replays a schedule; CHAOS_FAULTS lengthens the run.
package chaos
