package wire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Both ends of a connection prove, before the first frame, that they hold
// the agent's wire key (derived from the cluster secret and the agent's
// identity, so one agent's key opens no other agent): each sends a fresh
// nonce and answers the other's with an HMAC over both. Nothing secret
// crosses the connection, and an answer cannot be replayed on another.
//
//	client → server: "SHOALW1\n" | client nonce (16 bytes)
//	server → client: server nonce (16) | HMAC(key, "server" | cn | sn) (32)
//	client → server: HMAC(key, "client" | sn | cn) (32)
//	server → client: 'k'
//
// Without the key, neither end gets past this: a client that cannot answer
// is disconnected, and a server that cannot prove itself gets no invocation.

const (
	handshakeMagic   = "SHOALW1\n"
	nonceLen         = 16
	handshakeTimeout = 10 * time.Second
)

// ErrAuth is returned when the other end of a connection does not prove
// that it holds the key.
var ErrAuth = errors.New("wire: the other end does not hold the agent's key")

func mac(key []byte, who string, a, b []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(who))
	m.Write(a)
	m.Write(b)
	return m.Sum(nil)
}

// clientHandshake proves the client end of nc and checks the server's.
func clientHandshake(nc net.Conn, key []byte) error {
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	cn := make([]byte, nonceLen)
	_, _ = rand.Read(cn)
	if _, err := nc.Write(append([]byte(handshakeMagic), cn...)); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	reply := make([]byte, nonceLen+sha256.Size)
	if _, err := io.ReadFull(nc, reply); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	sn := reply[:nonceLen]
	if !hmac.Equal(reply[nonceLen:], mac(key, "server", cn, sn)) {
		return ErrAuth
	}
	if _, err := nc.Write(mac(key, "client", sn, cn)); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	var ok [1]byte
	if _, err := io.ReadFull(nc, ok[:]); err != nil || ok[0] != 'k' {
		return ErrAuth
	}
	return nil
}

// serverHandshake checks the client end of nc and proves the server's.
func serverHandshake(nc net.Conn, key []byte) error {
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	hello := make([]byte, len(handshakeMagic)+nonceLen)
	if _, err := io.ReadFull(nc, hello); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	if string(hello[:len(handshakeMagic)]) != handshakeMagic {
		return ErrAuth
	}
	cn := hello[len(handshakeMagic):]
	sn := make([]byte, nonceLen)
	_, _ = rand.Read(sn)
	if _, err := nc.Write(append(sn, mac(key, "server", cn, sn)...)); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	answer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(nc, answer); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	if !hmac.Equal(answer, mac(key, "client", sn, cn)) {
		return ErrAuth
	}
	if _, err := nc.Write([]byte{'k'}); err != nil {
		return fmt.Errorf("wire: handshake: %w", err)
	}
	return nil
}
