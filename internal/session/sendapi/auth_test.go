package sendapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// countingReviewer allows everyone and counts the reviews.
type countingReviewer struct{ n int }

func (c *countingReviewer) Authenticate(context.Context, string, string) (*UserInfo, error) {
	c.n++
	return &UserInfo{Username: "u"}, nil
}

func (c *countingReviewer) Authorize(context.Context, *UserInfo, ResourceAttributes) (bool, error) {
	return true, nil
}

func TestTheDecisionCacheExpiresAndStaysBounded(t *testing.T) {
	g := NewWithT(t)
	rev := &countingReviewer{}
	clock := time.Unix(1700000000, 0)
	a := &Authorizer{Reviewer: rev, Namespace: "ns", Name: "shop", TTL: 10 * time.Second, MaxEntries: 8,
		now: func() time.Time { return clock }}
	ctx := context.Background()
	_, _ = a.Check(ctx, "t", "get")
	_, _ = a.Check(ctx, "t", "get")
	g.Expect(rev.n).To(Equal(1))
	clock = clock.Add(11 * time.Second)
	_, _ = a.Check(ctx, "t", "get")
	g.Expect(rev.n).To(Equal(2), "a decision older than the TTL is asked again")

	for i := range 100 {
		_, _ = a.Check(ctx, fmt.Sprintf("spray-%d", i), "get")
	}
	g.Expect(len(a.cache)).To(BeNumerically("<=", 8))
}
