package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/poll"
)

func authBus(t *testing.T) (*Bus, Secret) {
	t.Helper()
	secret := Secret("thirty-two bytes of test secret!")
	b, err := Start(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, secret
}

// connectAs connects with the credentials of identity under secret, and
// collects the asynchronous errors (permission violations) it gets.
func connectAs(t *testing.T, b *Bus, secret Secret, identity string) (*nats.Conn, func() []string) {
	t.Helper()
	creds, err := secret.CredentialsFor(identity)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := creds.Options()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var errs []string
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	}), nats.MaxReconnects(0))
	nc, err := nats.Connect(b.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", identity, err)
	}
	t.Cleanup(nc.Close)
	return nc, func() []string {
		_ = nc.Flush()
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

func TestBusRefusesStrangers(t *testing.T) {
	b, secret := authBus(t)
	if nc, err := nats.Connect(b.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was let in")
	}
	other, _ := Secret("another secret, thirty-two bytes").CredentialsFor(AgentIdentity("i-1"))
	opts, _ := other.Options()
	if nc, err := nats.Connect(b.ClientURL(), append(opts, nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("a client with another secret's key was let in")
	}
	// The key of one agent does not open the door to another's name.
	mine, _ := secret.CredentialsFor(AgentIdentity("i-1"))
	opts, _ = mine.Options()
	if nc, err := nats.Connect(b.ClientURL(), append(opts, nats.Name(AgentIdentity("i-2")), nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("agent i-1's key was accepted for agent i-2")
	}
	unknown, _ := secret.CredentialsFor("somebody")
	opts, _ = unknown.Options()
	if nc, err := nats.Connect(b.ClientURL(), append(opts, nats.MaxReconnects(0))...); err == nil {
		nc.Close()
		t.Fatal("an identity with no permissions was let in")
	}
}

// TestAgentPermissions: an agent publishes its own heartbeats, usage and
// logs, hears its own commands, reads code packages, and nothing else.
func TestAgentPermissions(t *testing.T) {
	b, secret := authBus(t)
	ctx := context.Background()
	kv, err := b.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "shoal_registry"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "fn", []byte(`{"Environment":{"SECRET":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	obj, err := b.JetStream().CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "shoal_code"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, "abc", []byte("code")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SHOAL_USAGE:shoal.usage.>", "SHOAL_LOGS:logs.>"} {
		name, subj, _ := strings.Cut(s, ":")
		if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			t.Fatal(err)
		}
	}

	nc, asyncErrs := connectAs(t, b, secret, AgentIdentity("i-1"))
	js, err := NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	// What it may do.
	if _, err := nc.SubscribeSync("shoal.agent.i-1.cmd"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("shoal.fleet.hb.i-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "shoal.usage.invocation.fn.i-1", []byte("{}")); err != nil {
		t.Errorf("its own usage: %v", err)
	}
	if _, err := js.Publish(ctx, "logs.fn.i-1", []byte("{}")); err != nil {
		t.Errorf("its own logs: %v", err)
	}
	code, err := js.ObjectStore(ctx, "shoal_code")
	if err != nil {
		t.Fatalf("the code store: %v", err)
	}
	if got, err := code.GetBytes(ctx, "abc"); err != nil || string(got) != "code" {
		t.Errorf("a code package: %q, %v", got, err)
	}
	if errs := asyncErrs(); len(errs) > 0 {
		t.Fatalf("what an agent may do was refused: %v", errs)
	}

	// What it may not.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := nc.SubscribeSync("shoal.agent.i-2.cmd"); err == nil {
		_ = nc.Flush()
	}
	_ = nc.Publish("shoal.fleet.hb.i-2", []byte("{}"))
	_ = nc.Publish("logs.fn.i-2", []byte("{}"))
	_ = nc.Publish("shoal.usage.invocation.fn.cp", []byte("{}"))
	if _, err := nc.SubscribeSync("_INBOX.>"); err == nil {
		_ = nc.Flush()
	}
	if _, err := nc.SubscribeSync("shoal.fleet.hb.>"); err == nil {
		_ = nc.Flush()
	}
	// The server's refusals arrive asynchronously.
	refused := []string{"shoal.agent.i-2.cmd", "shoal.fleet.hb.i-2", "logs.fn.i-2", "shoal.usage.invocation.fn.cp", "_INBOX.>", "shoal.fleet.hb.>"}
	poll.Until(t, 10*time.Second, func() error {
		errs := strings.Join(asyncErrs(), "\n")
		var missing []string
		for _, subj := range refused {
			if !strings.Contains(errs, `"`+subj+`"`) {
				missing = append(missing, subj)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no refusal for %v; refusals:\n%s", missing, errs)
		}
		return nil
	})
	if reg, err := js.KeyValue(short, "shoal_registry"); err == nil {
		if _, err := reg.Get(short, "fn"); err == nil {
			t.Error("an agent read the registry")
		}
	}
	if _, err := js.CreateStream(short, jetstream.StreamConfig{Name: "X", Subjects: []string{"x.>"}}); err == nil {
		t.Error("an agent created a stream")
	}
	if err := js.DeleteStream(short, "SHOAL_USAGE"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("an agent deleted the usage stream: %v", err)
	}
	if _, err := b.JetStream().Stream(ctx, "SHOAL_USAGE"); err != nil {
		t.Errorf("the usage stream after the agent's attempt: %v", err)
	}
}

// TestDestinationReaderPermissions: a reader of records hears the records'
// subjects and reads what the stream keeps of them, and nothing else.
func TestDestinationReaderPermissions(t *testing.T) {
	b, secret := authBus(t)
	ctx := context.Background()
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: DestinationStream,
		Subjects: []string{DestinationPrefix + ">"}, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "SHOAL_ASYNC", Subjects: []string{"shoal.async.fn.*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().Publish(ctx, DestinationPrefix+"orders.failed", []byte(`{"version":"1.0"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream().Publish(ctx, "shoal.async.fn.f", []byte(`{"secret":1}`)); err != nil {
		t.Fatal(err)
	}

	nc, asyncErrs := connectAs(t, b, secret, DestinationReader)
	js, err := NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	live, err := nc.SubscribeSync(DestinationPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	kept, err := js.Stream(ctx, DestinationStream)
	if err != nil {
		t.Fatalf("the records' stream: %v", err)
	}
	if m, err := kept.GetLastMsgForSubject(ctx, DestinationPrefix+"orders.failed"); err != nil || string(m.Data) != `{"version":"1.0"}` {
		t.Fatalf("reading a kept record: %v", err)
	}
	if m, err := kept.GetMsg(ctx, 1); err != nil || string(m.Data) != `{"version":"1.0"}` {
		t.Fatalf("reading a kept record by sequence: %v", err)
	}
	if _, err := b.JetStream().Publish(ctx, DestinationPrefix+"orders.ok", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if msg, err := live.NextMsg(5 * time.Second); err != nil || msg.Subject != DestinationPrefix+"orders.ok" {
		t.Errorf("hearing a record live: %v", err)
	}
	if errs := asyncErrs(); len(errs) > 0 {
		t.Fatalf("what a reader may do was refused: %v", errs)
	}

	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// Not even on the records' stream: a push consumer would deliver them anywhere.
	if _, err := js.CreateOrUpdateConsumer(short, DestinationStream, jetstream.ConsumerConfig{Durable: "mine"}); err == nil {
		t.Error("a reader made a consumer")
	}
	if _, err := js.CreateOrUpdateConsumer(short, "SHOAL_ASYNC", jetstream.ConsumerConfig{Durable: "thief"}); err == nil {
		t.Error("a reader consumed the queue of asynchronous invocations")
	}
	if queue, err := js.Stream(short, "SHOAL_ASYNC"); err == nil {
		if _, err := queue.GetMsg(short, 1); err == nil {
			t.Error("a reader read the queue of asynchronous invocations")
		}
	}
	if _, err := js.Publish(short, DestinationPrefix+"forged", []byte(`{}`)); err == nil {
		t.Error("a reader published a record")
	}
	if err := js.DeleteStream(short, DestinationStream); err == nil {
		t.Error("a reader deleted the records' stream")
	}
	if _, err := nc.SubscribeSync("shoal.>"); err == nil {
		_ = nc.Flush()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(asyncErrs(), "\n"), `"shoal.>"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal for shoal.>; refusals: %v", asyncErrs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
