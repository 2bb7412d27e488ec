package zone

import (
	"net"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func testZone() *Zone {
	services := map[string][]string{
		"default/kubernetes": {"10.213.128.1"},
		"wa/sink":            {"10.213.128.40"},
	}
	return New("cluster.local", func(namespace, name string) ([]string, bool) {
		ips, found := services[namespace+"/"+name]
		return ips, found
	})
}

func ask(t *testing.T, z *Zone, name string, typ dnsmessage.Type) (dnsmessage.Header, []string) {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(z.Answer(q)); err != nil {
		t.Fatalf("%s: unpack the reply: %v", name, err)
	}
	if m.ID != 7 || !m.Response || !m.Authoritative {
		t.Fatalf("%s: header %+v: want the query's ID, a response, authoritative", name, m.Header)
	}
	var ips []string
	for _, a := range m.Answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			ips = append(ips, net.IP(r.A[:]).String())
		}
	}
	return m.Header, ips
}

func TestAnswer(t *testing.T) {
	z := testZone()
	for _, tc := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		ips   []string
	}{
		{"sink.wa.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"10.213.128.40"}},
		{"Kubernetes.Default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, []string{"10.213.128.1"}},
		// The name exists without an IPv6 address: NODATA, so a resolver asking A and AAAA
		// together still gets the A record.
		{"sink.wa.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, nil},
		// A pod's search list tries these first: they must fail fast and for certain.
		{"sink.wa.svc.cluster.local.wa.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"sink.other.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		{"wa.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, nil},
		// Not ours, and there is no upstream to ask.
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, nil},
	} {
		h, ips := ask(t, z, tc.name, tc.typ)
		if h.RCode != tc.rcode || len(ips) != len(tc.ips) || (len(ips) > 0 && ips[0] != tc.ips[0]) {
			t.Errorf("%s %v: got %v %v, want %v %v", tc.name, tc.typ, h.RCode, ips, tc.rcode, tc.ips)
		}
	}
}
