// Package lease holds a session pod's Lease: the elector that takes, renews and releases it by
// client-go's leader election rules, and the fence that closes the WhatsApp client before the
// Lease can be anyone else's (CloudNativePG's instance manager keeps its primary Lease apart
// from what it guards the same way, in internal/cmd/manager/instance/run/lease).
//
// The session's runtime uses it in this order: Acquire (a standby reads the Lease until it may
// take it), Hold (renews it every RetryPeriod while the guarded work runs, closes the fence and
// releases the Lease when either ends) and, meanwhile, Fence.Watchdog (closes the client once no
// renewal has succeeded for the renew deadline). The timings and their arithmetic are the
// controller–session contract's: internal/sessionenv.
//
// It is not client-go's elector: that one links the typed clientset and every API group (the
// session binary was 62 MB with it, 43 MB without, and a session's memory is mostly its
// binary's pages), and it does not fence. Client is the two requests the session's Role allows
// on its Lease; the session implements it with client-go's bare REST client.
package lease
