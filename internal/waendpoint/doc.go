// Package waendpoint is the one seam that decides which WhatsApp endpoint a
// whatsmeow client talks to.
//
// The default build leaves the client alone: the real endpoint and the real
// noise root key, which no resource, flag or environment variable can
// change. A build with the "fakewa" tag instead points the client at the
// loopback fake server of test/fakewa, using the client config file that
// the fakewa command writes and ConfigEnv names.
package waendpoint

// ConfigEnv names the variable the fakewa build reads: the path of a
// test/fakewa client config (address, CA PEM, root public key). The default
// build ignores it.
const ConfigEnv = "WAOPERATOR_FAKEWA_CONFIG"
