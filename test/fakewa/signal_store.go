package fakewa

import (
	"context"
	"sync"

	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/state/record"
	wastore "go.mau.fi/whatsmeow/store"
)

// signalStore is the fake phone's libsignal state, in memory: what the
// whatsmeow device keeps in SQL (identity, pre-keys, sessions, trusted
// identities), keyed by address string. Records are kept serialized so a
// caller never mutates a stored record by accident.
type signalStore struct {
	mu             sync.Mutex
	identity       *identity.KeyPair
	registrationID uint32
	preKeys        map[uint32]*record.PreKey
	signedPreKeys  map[uint32]*record.SignedPreKey
	sessions       map[string][]byte
	identities     map[string]*identity.Key
	senderKeys     map[string][]byte
}

func newSignalStore(id *identity.KeyPair, registrationID uint32) *signalStore {
	return &signalStore{
		identity:       id,
		registrationID: registrationID,
		preKeys:        map[uint32]*record.PreKey{},
		signedPreKeys:  map[uint32]*record.SignedPreKey{},
		sessions:       map[string][]byte{},
		identities:     map[string]*identity.Key{},
		senderKeys:     map[string][]byte{},
	}
}

var serializer = wastore.SignalProtobufSerializer

func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair { return s.identity }
func (s *signalStore) GetLocalRegistrationID() uint32        { return s.registrationID }

func (s *signalStore) SaveIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[addr.String()] = key
	return nil
}

// IsTrustedIdentity trusts on first use, as whatsmeow does.
func (s *signalStore) IsTrustedIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := s.identities[addr.String()]
	return known == nil || known.Fingerprint() == key.Fingerprint(), nil
}

func (s *signalStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.preKeys[id], nil
}

func (s *signalStore) StorePreKey(_ context.Context, id uint32, rec *record.PreKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.preKeys[id] = rec
	return nil
}

func (s *signalStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.preKeys[id]
	return ok, nil
}

func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.preKeys, id)
	return nil
}

func (s *signalStore) LoadSession(_ context.Context, addr *protocol.SignalAddress) (*record.Session, error) {
	s.mu.Lock()
	raw := s.sessions[addr.String()]
	s.mu.Unlock()
	if raw == nil {
		return record.NewSession(serializer.Session, serializer.State), nil
	}
	return record.NewSessionFromBytes(raw, serializer.Session, serializer.State)
}

func (s *signalStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

func (s *signalStore) StoreSession(_ context.Context, addr *protocol.SignalAddress, rec *record.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[addr.String()] = rec.Serialize()
	return nil
}

func (s *signalStore) ContainsSession(_ context.Context, addr *protocol.SignalAddress) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[addr.String()]
	return ok, nil
}

func (s *signalStore) DeleteSession(_ context.Context, addr *protocol.SignalAddress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, addr.String())
	return nil
}

func (s *signalStore) DeleteAllSessions(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string][]byte{}
	return nil
}

func (s *signalStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signedPreKeys[id], nil
}

func (s *signalStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*record.SignedPreKey, 0, len(s.signedPreKeys))
	for _, k := range s.signedPreKeys {
		out = append(out, k)
	}
	return out, nil
}

func (s *signalStore) StoreSignedPreKey(_ context.Context, id uint32, rec *record.SignedPreKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signedPreKeys[id] = rec
	return nil
}

func (s *signalStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.signedPreKeys[id]
	return ok, nil
}

func (s *signalStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.signedPreKeys, id)
	return nil
}

func (s *signalStore) StoreSenderKey(_ context.Context, name *protocol.SenderKeyName, rec *groupRecord.SenderKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.senderKeys[name.GroupID()+"\x00"+name.Sender().String()] = rec.Serialize()
	return nil
}

func (s *signalStore) LoadSenderKey(_ context.Context, name *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	s.mu.Lock()
	raw := s.senderKeys[name.GroupID()+"\x00"+name.Sender().String()]
	s.mu.Unlock()
	if raw == nil {
		return groupRecord.NewSenderKey(serializer.SenderKeyRecord, serializer.SenderKeyState), nil
	}
	return groupRecord.NewSenderKeyFromBytes(raw, serializer.SenderKeyRecord, serializer.SenderKeyState)
}
