package fakewa_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/gomega"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"

	"github.com/waoperator/whatsapp-operator/internal/testutil"
	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

func frame(data []byte) []byte {
	return append([]byte{byte(len(data) >> 16), byte(len(data) >> 8), byte(len(data))}, data...)
}

func withHeader(rest ...[]byte) []byte {
	return bytes.Join(append([][]byte{socket.WAConnHeader}, rest...), nil)
}

// dialRaw opens a websocket to the server without whatsmeow.
func dialRaw(t *testing.T, srv *fakewa.Server) *websocket.Conn {
	t.Helper()
	hc, err := srv.ClientConfig().HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctxT(t), socket.URL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// expectClosedByServer reads until the server ends the connection.
func expectClosedByServer(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("server did not close the connection")
			}
			return
		}
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	logs := &testutil.SyncBuffer{}
	srv := startServer(t, fakewa.Options{
		MaxFrameSize:     64 << 10,
		HandshakeTimeout: time.Second,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	cases := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{"wrong connection header", websocket.MessageBinary, []byte("GET / HTTP/1.1\r\n\r\n")},
		{"client hello without key", websocket.MessageBinary, withHeader(frame(nil))},
		{"client hello not protobuf", websocket.MessageBinary, withHeader(frame([]byte{0xff, 0xff, 0xff, 0xff}))},
		{"frame length over the limit", websocket.MessageBinary, withHeader([]byte{0xff, 0xff, 0xff})},
		{"websocket message over the limit", websocket.MessageBinary, withHeader(frame(make([]byte, 200<<10)))},
		{"text message", websocket.MessageText, []byte("hello")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := dialRaw(t, srv)
			_ = ws.Write(ctxT(t), tc.typ, tc.msg)
			expectClosedByServer(t, ws)
			NewWithT(t).Eventually(func() int { return srv.Stats().BadInputs }).Should(Equal(i + 1))
		})
	}
	t.Run("silent client hits the handshake timeout", func(t *testing.T) {
		ws := dialRaw(t, srv)
		expectClosedByServer(t, ws)
	})

	// A client may notice the close before the server has written its log
	// line (the handshake timeout also closes the socket from its side).
	NewWithT(t).Eventually(func() int { return strings.Count(logs.String(), "closing connection") }).
		Should(BeNumerically(">=", len(cases)+1), "one log line per closed connection")

	// The server still serves well-behaved clients.
	c := newClient(t, srv, storePath(t))
	NewWithT(t).Expect(c.Connect()).To(Succeed())
	waitNth[*events.QR](t, c.events, 1)
}

// noiseClient completes a real handshake (as whatsmeow does) so that the
// test can then send frames whatsmeow never would.
type noiseClient struct {
	fs     *socket.FrameSocket
	ns     *socket.NoiseSocket
	closed chan struct{}
}

func handshake(t *testing.T, srv *fakewa.Server) *noiseClient {
	t.Helper()
	g := NewWithT(t)
	ctx := ctxT(t)
	hc, err := srv.ClientConfig().HTTPClient()
	g.Expect(err).NotTo(HaveOccurred())
	fs := socket.NewFrameSocket(waLog.Noop, hc)
	g.Expect(fs.Connect(ctx)).To(Succeed())

	nh := socket.NewNoiseHandshake()
	nh.Start(socket.NoiseStartPattern, fs.Header)
	ephemeral, static := keys.NewKeyPair(), keys.NewKeyPair()
	nh.Authenticate(ephemeral.Pub[:])
	hello, _ := proto.Marshal(&waWa6.HandshakeMessage{ClientHello: &waWa6.HandshakeMessage_ClientHello{Ephemeral: ephemeral.Pub[:]}})
	g.Expect(fs.SendFrame(hello)).To(Succeed())
	var resp waWa6.HandshakeMessage
	g.Expect(proto.Unmarshal(<-fs.Frames, &resp)).To(Succeed())
	serverEphemeral := [32]byte(resp.GetServerHello().GetEphemeral())
	nh.Authenticate(serverEphemeral[:])
	g.Expect(nh.MixSharedSecretIntoKey(*ephemeral.Priv, serverEphemeral)).To(Succeed())
	serverStatic, err := nh.Decrypt(resp.GetServerHello().GetStatic())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(nh.MixSharedSecretIntoKey(*ephemeral.Priv, [32]byte(serverStatic))).To(Succeed())
	_, err = nh.Decrypt(resp.GetServerHello().GetPayload())
	g.Expect(err).NotTo(HaveOccurred())
	encryptedStatic := nh.Encrypt(static.Pub[:])
	g.Expect(nh.MixSharedSecretIntoKey(*static.Priv, serverEphemeral)).To(Succeed())
	payload, _ := proto.Marshal(&waWa6.ClientPayload{
		DevicePairingData: &waWa6.ClientPayload_DevicePairingRegistrationData{EIdent: keys.NewKeyPair().Pub[:]},
	})
	finish, _ := proto.Marshal(&waWa6.HandshakeMessage{ClientFinish: &waWa6.HandshakeMessage_ClientFinish{
		Static: encryptedStatic, Payload: nh.Encrypt(payload),
	}})
	g.Expect(fs.SendFrame(finish)).To(Succeed())

	nc := &noiseClient{fs: fs, closed: make(chan struct{})}
	nc.ns, err = nh.Finish(ctx, fs, func(context.Context, []byte) {}, func(context.Context, *socket.NoiseSocket, bool) { close(nc.closed) })
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { nc.ns.Stop(true, false) })
	return nc
}

func TestBadFramesAfterHandshakeCloseTheConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, fakewa.Options{})
	t.Run("frame that does not decrypt", func(t *testing.T) {
		nc := handshake(t, srv)
		NewWithT(t).Expect(nc.fs.SendFrame([]byte("not encrypted with the session key"))).To(Succeed())
		NewWithT(t).Eventually(nc.closed, 5*time.Second).Should(BeClosed())
	})
	t.Run("frame that is not a node", func(t *testing.T) {
		nc := handshake(t, srv)
		NewWithT(t).Expect(nc.ns.SendFrame(ctxT(t), []byte{0, 248, 200, 1})).To(Succeed())
		NewWithT(t).Eventually(nc.closed, 5*time.Second).Should(BeClosed())
	})
	t.Run("compressed bomb", func(t *testing.T) {
		nc := handshake(t, srv)
		NewWithT(t).Expect(nc.ns.SendFrame(ctxT(t), zlibBomb(t))).To(Succeed())
		NewWithT(t).Eventually(nc.closed, 5*time.Second).Should(BeClosed())
	})
	NewWithT(t).Eventually(func() fakewa.ServerStats { return srv.Stats() }).Should(And(
		HaveField("BadInputs", 3), HaveField("Handshakes", 3)))
}
