package whatsapp

import (
	"strings"

	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	waWa6 "go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/store"
	"google.golang.org/protobuf/proto"
)

// registrationPayload is the client payload whatsmeow would send, with the device's name in the
// companion properties of a registration: the phone lists a linked device by DeviceProps.os.
// whatsmeow keeps DeviceProps in a package variable (store.SetOSInfo); setting it per client
// here lets several sessions in one process (the tests) pair under their own names.
func registrationPayload(dev *store.Device, name string) *waWa6.ClientPayload {
	payload := dev.GetClientPayload()
	reg := payload.GetDevicePairingData()
	if reg == nil || name == "" {
		return payload
	}
	props := proto.Clone(store.DeviceProps).(*waCompanionReg.DeviceProps)
	props.Os = proto.String(name)
	if raw, err := proto.Marshal(props); err == nil {
		reg.DeviceProps = raw
	}
	return payload
}

// displaySafe makes a device name fit the "Browser (OS)" shape WhatsApp requires of a
// pairing-code display name: no parentheses inside.
func displaySafe(name string) string {
	return strings.NewReplacer("(", "", ")", "").Replace(name)
}
