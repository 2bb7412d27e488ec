package main

import (
	"fmt"
	"io"
)

const (
	sampleFile = "config/samples/whatsapp_v1alpha1_whatsappconnection_qr_sqlite.yaml"
	sampleName = "support"
	fakePhone  = "+15550001111"
)

func printInstructions(w io.Writer, info readyInfo) {
	if w == nil {
		return
	}
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("Local whatsapp-operator is running: embedded kube-apiserver and etcd, the controller, and")
	p("session pods as local processes. State is ephemeral: the next start begins empty. In another shell:")
	p("")
	p("  export KUBECONFIG=%s", info.Kubeconfig)
	p("  kubectl apply -f %s", sampleFile)
	p("  kubectl get wac")
	p("  kubectl describe wac %s", sampleName)
	if info.FakeControlURL == "" {
		p("")
		p("Sessions talk to the real WhatsApp: scan the QR code that `kubectl describe` shows with")
		p("WhatsApp on your phone (Settings > Linked devices > Link a device).")
	} else {
		p("")
		p("Sessions talk to the fake WhatsApp (offline). Scan the QR as the fake phone %s:", fakePhone)
		p("")
		p(`  curl -s -XPOST %s/scan -d "{\"phone\":\"%s\",\"qr\":\"$(kubectl get wac %s -o jsonpath='{.status.connection.qrCode}')\"}"`,
			info.FakeControlURL, fakePhone, sampleName)
		p("  curl -s %s/devices", info.FakeControlURL)
	}
	p("")
	p("Ctrl-C stops everything.")
}
