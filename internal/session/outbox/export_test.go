package outbox

import "context"

// MarkSendingForTest records an attempt, as the worker does before it sends.
func (s *Store) MarkSendingForTest(ctx context.Context, id string) error {
	return s.markSending(ctx, id)
}
