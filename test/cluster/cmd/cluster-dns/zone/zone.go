// Package zone answers DNS queries for the names of ClusterIP Services,
// <service>.<namespace>.svc.<domain>, from whatever knows the Services (cluster-dns: an informer's
// cache). It is its own package so that its tests link no Kubernetes client.
package zone

import (
	"net"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// ttl is short: a Service deleted and recreated gets a new ClusterIP.
const ttl = 5

// Lookup returns the ClusterIPs of Service name in namespace, and false when there is no such
// Service.
type Lookup func(namespace, name string) (clusterIPs []string, found bool)

// Zone answers names under .svc.<domain>.
type Zone struct {
	suffix string
	lookup Lookup
}

// New serves .svc.<domain>. from lookup.
func New(domain string, lookup Lookup) *Zone {
	return &Zone{suffix: ".svc." + strings.Trim(strings.ToLower(domain), ".") + ".", lookup: lookup}
}

// Suffix is the part of a name the zone answers for, e.g. ".svc.cluster.local.".
func (z *Zone) Suffix() string { return z.suffix }

// Answer builds the reply to one query message; nil when the message is not a query to answer.
func (z *Zone) Answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError, nil)
	}
	if h.OpCode != 0 {
		return reply(h, &q, dnsmessage.RCodeNotImplemented, nil)
	}
	name := strings.ToLower(q.Name.String())
	rest, ok := strings.CutSuffix(name, z.suffix)
	if !ok || q.Class != dnsmessage.ClassINET {
		return reply(h, &q, dnsmessage.RCodeRefused, nil)
	}
	svc, ns, ok := strings.Cut(rest, ".")
	if !ok || svc == "" || ns == "" || strings.Contains(ns, ".") {
		return reply(h, &q, dnsmessage.RCodeNameError, nil)
	}
	clusterIPs, found := z.lookup(ns, svc)
	if !found {
		return reply(h, &q, dnsmessage.RCodeNameError, nil)
	}
	var ips []net.IP
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
		for _, a := range clusterIPs {
			if ip := net.ParseIP(a).To4(); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	// The name exists: other types get an empty answer (NODATA), not NXDOMAIN.
	return reply(h, &q, dnsmessage.RCodeSuccess, ips)
}

func reply(h dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, ips []net.IP) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RCode: rcode,
	})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	if q != nil {
		if err := b.Question(*q); err != nil {
			return nil
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil
	}
	for _, ip := range ips {
		var a dnsmessage.AResource
		copy(a.A[:], ip)
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: ttl}, a); err != nil {
			return nil
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}
