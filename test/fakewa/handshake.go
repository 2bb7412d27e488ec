package fakewa

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"

	"github.com/waoperator/whatsapp-operator/test/fakewa/internal/wire"
	"google.golang.org/protobuf/proto"
)

// handshake runs the responder side of the noise XX handshake: ClientHello
// (ephemeral) -> ServerHello (ephemeral, encrypted static, encrypted cert
// chain) -> ClientFinish (encrypted static, encrypted ClientPayload).
func (c *conn) handshake(ctx context.Context, dec *wire.FrameDecoder) error {
	frame, err := c.readOneFrame(ctx, dec)
	if err != nil {
		return fmt.Errorf("reading client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &hello); err != nil {
		return fmt.Errorf("client hello: %w", err)
	}
	clientEphemeral := hello.GetClientHello().GetEphemeral()
	if len(clientEphemeral) != 32 {
		return errors.New("client hello without a 32-byte ephemeral key")
	}

	ns, err := newNoiseState(socket.WAConnHeader)
	if err != nil {
		return err
	}
	ns.authenticate(clientEphemeral)
	serverEphemeral := keys.NewKeyPair()
	serverStatic := keys.NewKeyPair()
	ns.authenticate(serverEphemeral.Pub[:])
	if err := ns.mixSharedSecret(*serverEphemeral.Priv, [32]byte(clientEphemeral)); err != nil {
		return err
	}
	staticCiphertext := ns.encrypt(serverStatic.Pub[:])
	if err := ns.mixSharedSecret(*serverStatic.Priv, [32]byte(clientEphemeral)); err != nil {
		return err
	}
	chain, err := c.srv.creds.noiseCertChain(serverStatic)
	if err != nil {
		return err
	}
	certCiphertext := ns.encrypt(chain)
	serverHello, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: serverEphemeral.Pub[:],
		Static:    staticCiphertext,
		Payload:   certCiphertext,
	}})
	if err != nil {
		return err
	}
	if err := c.writeRawFrame(ctx, serverHello); err != nil {
		return fmt.Errorf("writing server hello: %w", err)
	}

	frame, err = c.readOneFrame(ctx, dec)
	if err != nil {
		return fmt.Errorf("reading client finish: %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &finish); err != nil {
		return fmt.Errorf("client finish: %w", err)
	}
	static, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil || len(static) != 32 {
		return errors.New("client static key does not decrypt to 32 bytes")
	}
	if err := ns.mixSharedSecret(*serverEphemeral.Priv, [32]byte(static)); err != nil {
		return err
	}
	payloadBytes, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return errors.New("client payload does not decrypt")
	}
	var payload waWa6.ClientPayload
	if err := proto.Unmarshal(payloadBytes, &payload); err != nil {
		return fmt.Errorf("client payload: %w", err)
	}
	transport, err := ns.transport()
	if err != nil {
		return err
	}
	c.transport = transport
	c.clientStatic = [32]byte(static)
	c.payload = &payload
	return nil
}

// readOneFrame reads exactly one handshake frame; a client that pipelines
// more than one during the handshake is broken.
func (c *conn) readOneFrame(ctx context.Context, dec *wire.FrameDecoder) ([]byte, error) {
	frames, err := c.readFrames(ctx, dec)
	if err != nil {
		return nil, err
	}
	if len(frames) != 1 {
		return nil, fmt.Errorf("expected one handshake frame, got %d", len(frames))
	}
	return frames[0], nil
}
