package session

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// conflictingLock answers the first Update with a conflict and Get with holder.
type conflictingLock struct {
	resourcelock.Interface // nil: only the methods below are called
	holder                 string
	updates                int
}

func (l *conflictingLock) Identity() string { return "me" }
func (l *conflictingLock) Describe() string { return "test/lease" }
func (l *conflictingLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	return &resourcelock.LeaderElectionRecord{HolderIdentity: l.holder}, nil, nil
}
func (l *conflictingLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	l.updates++
	if l.updates == 1 {
		return apierrors.NewConflict(schema.GroupResource{Resource: "leases"}, "lease", nil)
	}
	return nil
}

func TestFencedLockRetriesAConflictOnlyOnItsOwnRecord(t *testing.T) {
	cases := map[string]struct {
		holder, writes string
		wantErr        bool
		wantUpdates    int
	}{
		"our record, changed under us: retried at once": {holder: "me", writes: "me", wantErr: false, wantUpdates: 2},
		"someone else's record: the conflict stands":    {holder: "other", writes: "me", wantErr: true, wantUpdates: 1},
		"a release is never retried":                    {holder: "me", writes: "", wantErr: true, wantUpdates: 1},
	}
	for name, c := range cases {
		inner := &conflictingLock{holder: c.holder}
		l := &fencedLock{Interface: inner, fence: newFence(0), writes: func() {}}
		err := l.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: c.writes})
		if (err != nil) != c.wantErr || inner.updates != c.wantUpdates {
			t.Errorf("%s: err=%v after %d updates; want error=%v after %d", name, err, inner.updates, c.wantErr, c.wantUpdates)
		}
	}
}
