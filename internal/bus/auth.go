package bus

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Who speaks on the bus.
//
// Every client authenticates with an nkey: an Ed25519 key pair derived from
// the bus's Secret and the client's identity (its connection name), so the
// server recognises any identity without a list of users, and no secret
// crosses the wire (the client signs the server's nonce). Each identity has
// its permissions: the control plane all of them; an agent only its own
// heartbeats, usage, logs and replies, its own commands, and the JetStream
// calls that read code packages — not the registry, not another agent's
// subjects, not the streams' configuration.

// ControlPlane is the identity of the control plane's connection.
const ControlPlane = "controlplane"

// DestinationReader is the identity of those who read the records and dead
// letters of asynchronous invocations that shoal sends to NATS subjects: it
// may subscribe to the subjects under DestinationPrefix and read what the
// stream DestinationStream keeps of them, and nothing else.
const DestinationReader = "lambda-destinations"

// The records' subjects and the stream that keeps them (package asyncq
// publishes there).
const (
	DestinationPrefix = "lambda."
	DestinationStream = "SHOAL_DESTINATIONS"
)

// AgentIdentity is the identity of the agent of instance id.
func AgentIdentity(id string) string { return "agent." + id }

// Secret is the key every identity on the bus derives from. It is the
// cluster's secret: whoever holds it may speak as anyone.
type Secret []byte

// secretBytes is the length of a new secret.
const secretBytes = 32

// LoadOrCreateSecret reads the secret at path (hex), writing a fresh one,
// mode 0600, when the file does not exist.
func LoadOrCreateSecret(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, secretBytes)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("bus: secret: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("bus: secret: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("bus: secret: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("bus: secret: %w", err)
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bus: secret: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) < 16 {
		return nil, fmt.Errorf("bus: secret %s: not a hex key of at least 16 bytes", path)
	}
	return raw, nil
}

// Derive returns a key for purpose, specific to this secret.
func (s Secret) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, s)
	m.Write([]byte("shoal\x00" + purpose))
	return m.Sum(nil)
}

// KeyPair is the nkey of identity.
func (s Secret) KeyPair(identity string) (nkeys.KeyPair, error) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, s.Derive("bus nkey\x00"+identity))
	if err != nil {
		return nil, fmt.Errorf("bus: nkey of %s: %w", identity, err)
	}
	return kp, nil
}

// Credentials is what a client needs to connect as identity: its identity
// and its nkey seed.
type Credentials struct {
	Identity string
	Seed     []byte
}

// CredentialsFor returns the credentials of identity.
func (s Secret) CredentialsFor(identity string) (Credentials, error) {
	kp, err := s.KeyPair(identity)
	if err != nil {
		return Credentials{}, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return Credentials{}, fmt.Errorf("bus: %w", err)
	}
	return Credentials{Identity: identity, Seed: seed}, nil
}

// WriteFile writes the credentials to path, mode 0600: the identity on the
// first line, the seed on the second.
func (c Credentials) WriteFile(path string) error {
	body := c.Identity + "\n" + string(c.Seed) + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("bus: credentials: %w", err)
	}
	return os.Chmod(path, 0o600)
}

// ReadCredentials reads a file written by Credentials.WriteFile.
func ReadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("bus: credentials: %w", err)
	}
	identity, seed, ok := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if !ok || identity == "" || seed == "" {
		return Credentials{}, fmt.Errorf("bus: credentials %s: want an identity and a seed", path)
	}
	return Credentials{Identity: identity, Seed: []byte(strings.TrimSpace(seed))}, nil
}

// WireKey is the key both ends of the identity's invoke connections prove
// they hold (internal/wire): the control plane derives it from the secret,
// the agent from its seed.
func (c Credentials) WireKey() []byte {
	m := hmac.New(sha256.New, c.Seed)
	m.Write([]byte("shoal wire"))
	return m.Sum(nil)
}

// InboxPrefix is where identity receives replies; only it may subscribe there.
func InboxPrefix(identity string) string {
	return "_INBOX_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(identity)
}

// Options are the connection options that authenticate as c.
func (c Credentials) Options() ([]nats.Option, error) {
	kp, err := nkeys.FromSeed(c.Seed)
	if err != nil {
		return nil, fmt.Errorf("bus: credentials of %s: %w", c.Identity, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("bus: credentials of %s: %w", c.Identity, err)
	}
	return []nats.Option{
		nats.Name(c.Identity),
		nats.Nkey(pub, kp.Sign),
		nats.CustomInboxPrefix(InboxPrefix(c.Identity)),
	}, nil
}

// authenticator is the server's check of every client.
type authenticator struct{ secret Secret }

var _ server.Authentication = authenticator{}

func (a authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	if o == nil || o.Nkey == "" || o.Sig == "" || o.Name == "" {
		return false
	}
	perms, ok := permissionsOf(o.Name)
	if !ok {
		return false
	}
	kp, err := a.secret.KeyPair(o.Name)
	if err != nil {
		return false
	}
	if pub, err := kp.PublicKey(); err != nil || !hmac.Equal([]byte(pub), []byte(o.Nkey)) {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(o.Sig)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(o.Sig); err != nil {
			return false
		}
	}
	if kp.Verify(c.GetNonce(), sig) != nil {
		return false
	}
	c.RegisterUser(&server.User{Username: o.Name, Permissions: perms})
	return true
}

// permissionsOf returns what identity may do, and whether it is known.
func permissionsOf(identity string) (*server.Permissions, bool) {
	if identity == ControlPlane || strings.HasPrefix(identity, "host.") {
		// The control plane, and a cluster's hosts: both hold the secret.
		return nil, true // everything
	}
	if identity == DestinationReader {
		return destinationReader(), true
	}
	id, ok := strings.CutPrefix(identity, "agent.")
	if !ok || id == "" || strings.ContainsAny(id, ".*> \t") {
		return nil, false
	}
	const code = "OBJ_shoal_code"
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"shoal.fleet.hb." + id,
			"shoal.usage.*.*." + id,
			"logs.*." + id,
			// Code packages: read only.
			"$JS.API.STREAM.INFO." + code,
			"$JS.API.STREAM.MSG.GET." + code,
			"$JS.API.DIRECT.GET." + code + ".>",
			"$JS.API.CONSUMER.CREATE." + code,
			"$JS.API.CONSUMER.CREATE." + code + ".>",
			"$JS.API.CONSUMER.INFO." + code + ".>",
			"$JS.API.CONSUMER.DELETE." + code + ".>",
			// Where its usage and logs go: looked up, never changed.
			"$JS.API.STREAM.INFO.SHOAL_USAGE",
			"$JS.API.STREAM.INFO.SHOAL_LOGS",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			"shoal.agent." + id + ".cmd",
			InboxPrefix(identity) + ".>",
		}},
		// Replies to the commands it receives, and to JetStream's flow control.
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}, true
}

// destinationReader is what DestinationReader may do: hear the records'
// subjects and read the messages the stream keeps, one by one (direct gets
// by sequence or subject). It may not make consumers: a push consumer's
// deliver subject is not checked against its maker's permissions, so a
// consumer would let a reader have the server publish kept messages (dead
// letters are payloads callers chose) on any subject, an agent's commands
// included.
func destinationReader() *server.Permissions {
	const st = DestinationStream
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO." + st,
			"$JS.API.STREAM.MSG.GET." + st,
			"$JS.API.DIRECT.GET." + st,
			"$JS.API.DIRECT.GET." + st + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			DestinationPrefix + ">",
			InboxPrefix(DestinationReader) + ".>",
		}},
	}
}
