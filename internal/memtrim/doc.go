// Package memtrim gives back, once a session has settled, the memory that only its start-up
// needed: the Go heap's free pages, and the mappings of its own binary's code and read-only data.
//
// Why the binary: a session's resident memory was two thirds pages of its own executable
// (docs/benchmarks.md, "Where the time and memory of a session go"). Package initialisation runs
// code in nearly every package it links, the store's migration, pairing and the first login run
// more, and the kernel maps file pages around each fault, so after start-up ~23 MiB of the binary
// stay mapped although an idle session runs a small part of it. Those pages are the node's page
// cache, shared by every session; unmapping them costs nothing but a page fault the next time a
// page is used (read from the page cache, not the disk, while the node has the memory), and lets
// the kernel reclaim what no session uses any more without first unmapping it from each.
package memtrim
