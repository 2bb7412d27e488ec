package events

// A sink "strands" an event when it gives up on it and no dead-letter destination takes it: the
// event stays in the inbox (until the retention ends) and the sink moves on. Stranding starts an
// episode that lasts until the sink next delivers an event; the session reports one condition
// change per episode, and the controller one Warning event, never one per event.

// Reasons an event was given up on (also the ce-deadletterreason of a dead letter).
const (
	GiveUpMaxAge  = "maxAge"  // still not delivered after the sink's maximum age
	GiveUpRefused = "refused" // the sink answered a status not worth retrying (4xx)
)

// Stranding is a sink's current episode of given-up events.
type Stranding struct {
	// Episode numbers the episodes of this deliverer (from 1); 0: none under way.
	Episode int64
	// Events given up on in this episode so far, and the reason of the first.
	Events int64
	Reason string
}

// Stranding reports the episode under way, if any.
func (d *Deliverer) Stranding() Stranding {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	if !d.health.stranding {
		return Stranding{}
	}
	return Stranding{Episode: d.health.episode, Events: d.health.stranded, Reason: d.health.strandReason}
}

// strand records an event given up on and left in the inbox.
func (d *Deliverer) strand(reason string) {
	d.gaveUp.Add(1)
	d.health.mu.Lock()
	start := !d.health.stranding
	if start {
		d.health.stranding, d.health.stranded, d.health.strandReason = true, 0, reason
		d.health.episode++
	}
	d.health.stranded++
	d.health.mu.Unlock()
	if start {
		d.Log.Info("giving up on events with no dead-letter destination to take them; they stay in the inbox", "sink", d.Sink.Name, "reason", reason)
		d.notifyHealth()
	}
}
