package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/guard"
)

// DefaultMaxUnzippedCodeBytes is Lambda's limit on a function's code and layers,
// unzipped (250 MB).
const DefaultMaxUnzippedCodeBytes = 262144000

// Default bucket names. Remote agents read code from DefaultCodeBucket by CodeKey.
const (
	DefaultBucket     = "shoal_registry"
	DefaultCodeBucket = "shoal_code"
)

// Config configures a Registry.
type Config struct {
	AccountID string // default "123456789012"
	Region    string // default "us-east-1"
	// Bucket is the JetStream KV bucket of function records; default DefaultBucket.
	Bucket string
	// CodeBucket is the JetStream object store of code zips; default DefaultCodeBucket.
	CodeBucket string
	// Replicas of both buckets (1 on one machine; 3 on a NATS cluster).
	Replicas int
	// CapacityProviderLimit is the account's quota of capacity providers (default
	// 1000); VersionsPerCapacityProvider the published function versions one capacity
	// provider may run (default 100).
	CapacityProviderLimit       int
	VersionsPerCapacityProvider int
	// MaxUnzippedCodeBytes bounds a function's code and layers together, unzipped
	// (default Lambda's 262144000).
	MaxUnzippedCodeBytes int64
	Logger               *slog.Logger
	Clock                clock.Clock
	// Rand draws the uniform number in [0, 1) that picks the version an
	// invocation of a weighted alias runs (default math/rand/v2's Float64). It
	// must be safe for concurrent use.
	Rand func() float64
	// RuntimeVersion names the current build of a runtime (the last part of
	// its RuntimeVersionArn, runtimes.VersionID); nil or "" gives one fixed
	// name per runtime. It must be safe for concurrent use.
	RuntimeVersion func(runtime string) string
}

func (c *Config) setDefaults() {
	if c.AccountID == "" {
		c.AccountID = "123456789012"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.CodeBucket == "" {
		c.CodeBucket = DefaultCodeBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.CapacityProviderLimit == 0 {
		c.CapacityProviderLimit = DefaultCapacityProviderLimit
	}
	if c.VersionsPerCapacityProvider == 0 {
		c.VersionsPerCapacityProvider = DefaultVersionsPerCapacityProvider
	}
	if c.MaxUnzippedCodeBytes == 0 {
		c.MaxUnzippedCodeBytes = DefaultMaxUnzippedCodeBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// Validate checks the configuration (after defaults).
func (c *Config) Validate() error {
	c.setDefaults()
	if len(c.AccountID) != 12 || strings.Trim(c.AccountID, "0123456789") != "" {
		return fmt.Errorf("registry: account id %q must be 12 digits", c.AccountID)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("registry: replicas %d out of 1..5", c.Replicas)
	}
	if c.CapacityProviderLimit < 0 || c.VersionsPerCapacityProvider < 0 || c.MaxUnzippedCodeBytes < 0 {
		return errors.New("registry: capacity provider limits must not be negative")
	}
	return nil
}

// Registry stores functions and serves them from an in-memory copy that a KV watch
// keeps current, so reads (ResolveVersion on the invoke path) cost a map lookup.
//
// Concurrency: cfg, kv, obj, log are immutable after Open. mu guards funcs, pcs,
// cps, cpStatus, vStatus, layers, subs and updating. Every record in funcs is immutable
// once stored (storeFunc sets $LATEST's config key before it does): writers decode
// a fresh copy, change it, compare-and-set it in KV, then store the new copy. codeMu orders code
// uploads (read-locked from upload to record commit) against code garbage collection
// (write-locked). acctMu serialises changes checked against account-wide sums
// (reserved and provisioned concurrency). cpMu serialises capacity provider creation
// and deletion against functions that start using one. Lock order: cpMu, acctMu,
// codeMu, mu.
type Registry struct {
	cfg Config
	kv  jetstream.KeyValue
	obj jetstream.ObjectStore
	log *slog.Logger

	cpMu   sync.Mutex
	acctMu sync.Mutex
	codeMu sync.RWMutex

	mu       sync.RWMutex
	funcs    map[string]*cachedFunc   // by function name; rec nil = deleted at rev
	pcs      map[string]*cachedStatus // by "name.qualifier"
	cps      map[string]*cachedCP     // by capacity provider name; rec nil = deleted
	cpStatus map[string]*cachedCPStatus
	vStatus  map[string]*cachedVersionStatus // by versionStatusKey
	layers   map[string]*cachedLayer         // by layer name; rec nil = deleted
	subs     map[*subscriber]struct{}
	// updating holds the functions whose update is under way (BeginUpdate).
	updating map[string]bool
	// urlIndex finds a function URL by its id (urls.go).
	urlIndex map[string]urlRef

	cancel context.CancelFunc
	done   chan struct{}
}

type cachedFunc struct {
	rec *functionRecord
	rev uint64
}

type cachedStatus struct {
	st  *provisionedStatus
	rev uint64
}

type cachedCP struct {
	rec *capacityProviderRecord
	rev uint64
}

type cachedCPStatus struct {
	st  *capacityProviderStatus
	rev uint64
}

type cachedVersionStatus struct {
	st  *versionStatus
	rev uint64
}

const (
	fnPrefix       = "fn."
	pcPrefix       = "pcs."
	cpPrefix       = "cp."
	cpStatusPrefix = "cps."
	vStatusPrefix  = "vst."
)

// readFromLeader makes the replicated bucket's reads go to its stream's
// leader. A KV bucket lets every replica answer a read, so right after a
// write a lagging replica can answer with the record before it, or with none:
// a function created on one node and published at once would not be found.
// The registry reads KV only on a cache miss and to compare-and-set, so the
// hop to the leader costs little.
func readFromLeader(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Config.AllowDirect {
		cfg := info.Config
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return js.KeyValue(ctx, bucket)
}

// Open creates or opens the registry's buckets and loads every function.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "shoal functions, versions, aliases, concurrency",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: kv bucket %s: %w", cfg.Bucket, err)
	}
	if cfg.Replicas > 1 {
		if kv, err = readFromLeader(ctx, js, cfg.Bucket); err != nil {
			return nil, fmt.Errorf("registry: kv bucket %s: %w", cfg.Bucket, err)
		}
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.CodeBucket,
		Description: "shoal function code packages by sha256",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: object store %s: %w", cfg.CodeBucket, err)
	}
	r := &Registry{
		cfg:   cfg,
		kv:    kv,
		obj:   obj,
		log:   cfg.Logger.With("component", "registry"),
		funcs: make(map[string]*cachedFunc),
		pcs:   make(map[string]*cachedStatus),
		subs:  make(map[*subscriber]struct{}),
		done:  make(chan struct{}),

		updating: make(map[string]bool),

		cps:      make(map[string]*cachedCP),
		cpStatus: make(map[string]*cachedCPStatus),
		vStatus:  make(map[string]*cachedVersionStatus),
		layers:   make(map[string]*cachedLayer),
	}
	wctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("registry: watch: %w", err)
	}
	// Initial values end with a nil entry.
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("registry: watch closed while loading")
			}
			if e == nil {
				loaded = true
				break
			}
			r.applyEntry(e)
		case <-ctx.Done():
			cancel()
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
	go r.watchLoop(w)
	r.log.Info("registry open", "functions", r.countFunctions())
	return r, nil
}

// Close stops the registry's watch and every Watch channel.
func (r *Registry) Close() {
	r.cancel()
	<-r.done
	r.mu.Lock()
	for s := range r.subs {
		s.stop()
	}
	r.subs = map[*subscriber]struct{}{}
	r.mu.Unlock()
}

func (r *Registry) watchLoop(w jetstream.KeyWatcher) {
	defer close(r.done)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e != nil {
			_ = guard.Run(r.log, "registry update", func() { r.applyEntry(e) })
		}
	}
}

func (r *Registry) countFunctions() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, c := range r.funcs {
		if c.rec != nil {
			n++
		}
	}
	return n
}

// applyEntry folds one KV entry (from the watch) into the cache.
func (r *Registry) applyEntry(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, fnPrefix):
		if rec, ok := decodeEntry[functionRecord](r, e, deleted, "function record"); ok {
			r.storeFunc(key[len(fnPrefix):], rec, e.Revision())
		}
	case strings.HasPrefix(key, pcPrefix):
		if st, ok := decodeEntry[provisionedStatus](r, e, deleted, "provisioned status"); ok {
			r.storeStatus(key[len(pcPrefix):], st, e.Revision())
		}
	case strings.HasPrefix(key, cpPrefix):
		if rec, ok := decodeEntry[capacityProviderRecord](r, e, deleted, "capacity provider"); ok {
			r.storeCP(key[len(cpPrefix):], rec, e.Revision())
		}
	case strings.HasPrefix(key, cpStatusPrefix):
		if st, ok := decodeEntry[capacityProviderStatus](r, e, deleted, "capacity provider status"); ok {
			r.storeCPStatus(key[len(cpStatusPrefix):], st, e.Revision())
		}
	case strings.HasPrefix(key, vStatusPrefix):
		if st, ok := decodeEntry[versionStatus](r, e, deleted, "version status"); ok {
			r.storeVersionStatus(key[len(vStatusPrefix):], st, e.Revision())
		}
	case strings.HasPrefix(key, layerPrefix):
		if rec, ok := decodeEntry[layerRecord](r, e, deleted, "layer"); ok {
			r.storeLayer(key[len(layerPrefix):], rec, e.Revision())
		}
	}
}

// decodeEntry decodes a watched entry's value into a new T; a deletion gives nil.
// An undecodable value is logged and reported as not ok, so the cache keeps what it had.
func decodeEntry[T any](r *Registry, e jetstream.KeyValueEntry, deleted bool, what string) (*T, bool) {
	if deleted {
		return nil, true
	}
	v := new(T)
	if err := json.Unmarshal(e.Value(), v); err != nil {
		r.log.Error("undecodable "+what, "key", e.Key(), "err", err)
		return nil, false
	}
	return v, true
}

// storeFunc puts a record (nil: deleted) in the cache unless the cache already holds
// a newer revision, and notifies watchers.
func (r *Registry) storeFunc(name string, rec *functionRecord, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.funcs[name]
	if ok && c.rev >= rev {
		return
	}
	if rec != nil && rec.Latest != nil {
		rec.Latest.configKey = fingerprint(rec.Latest)
		setLayerCode(rec)
	}
	var old *functionRecord
	if ok {
		old = c.rec
	}
	r.indexURLs(name, old, rec)
	r.funcs[name] = &cachedFunc{rec: rec, rev: rev}
	ch := Change{Function: name, Deleted: rec == nil}
	for s := range r.subs {
		s.notify(ch)
	}
}

func (r *Registry) storeStatus(key string, st *provisionedStatus, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.pcs[key]; ok && c.rev >= rev {
		return
	}
	r.pcs[key] = &cachedStatus{st: st, rev: rev}
}

// cached returns the cached record of a function, or nil.
func (r *Registry) cached(name string) *functionRecord {
	r.mu.RLock()
	c := r.funcs[name]
	r.mu.RUnlock()
	if c == nil {
		return nil
	}
	return c.rec
}

// load returns a function's record, from the cache or, on a miss, from KV (a function
// created by another process whose watch event has not arrived yet).
func (r *Registry) load(ctx context.Context, name string) (*functionRecord, error) {
	if rec := r.cached(name); rec != nil {
		return rec, nil
	}
	if !validKeyToken(name) {
		return nil, r.functionNotFound(name, "")
	}
	e, err := r.kv.Get(ctx, fnPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, r.functionNotFound(name, "")
	}
	if err != nil {
		return nil, awserr.Service(err, "failed to read function %s", name)
	}
	rec := new(functionRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return nil, awserr.Service(err, "failed to decode function %s", name)
	}
	r.storeFunc(name, rec, e.Revision())
	return rec, nil
}

// maxCASAttempts bounds the compare-and-set retries of one change.
const maxCASAttempts = 50

// errUnchanged, returned by a change, ends update without writing: the change found
// nothing to do.
var errUnchanged = errors.New("registry: unchanged")

// update applies change to a fresh copy of a function's record and stores it with a
// compare-and-set on the KV revision, retrying when another writer got there first.
// change may return an error (typically an *awserr.Error) to abort.
func (r *Registry) update(ctx context.Context, name string, change func(rec *functionRecord) error) (*functionRecord, error) {
	if !validKeyToken(name) {
		return nil, r.functionNotFound(name, "")
	}
	key := fnPrefix + name
	for range maxCASAttempts {
		e, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, r.functionNotFound(name, "")
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to read function %s", name)
		}
		rec := new(functionRecord)
		if err := json.Unmarshal(e.Value(), rec); err != nil {
			return nil, awserr.Service(err, "failed to decode function %s", name)
		}
		if err := change(rec); errors.Is(err, errUnchanged) {
			return rec, nil
		} else if err != nil {
			return nil, err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, awserr.Service(err, "failed to encode function %s", name)
		}
		rev, err := r.kv.Update(ctx, key, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // lost the race: read again
		}
		if err != nil {
			return nil, awserr.Service(err, "failed to store function %s", name)
		}
		r.storeFunc(name, rec, rev)
		return rec, nil
	}
	return nil, awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.FunctionARN(name, ""))
}

// BeginUpdate marks an update of a function (its code or configuration, or a
// publish) as under way until end is called. While it is, another BeginUpdate for
// the function fails with Lambda's ResourceConflictException, as Lambda refuses a
// change while an update is in progress, and Updating reports it. The mark lives in
// this process: control planes sharing a registry still serialise their writes by
// compare-and-set, but only the one making an update refuses others meanwhile.
func (r *Registry) BeginUpdate(name string) (end func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.updating[name] {
		return nil, awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.FunctionARN(name, ""))
	}
	r.updating[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.updating, name)
			r.mu.Unlock()
		})
	}, nil
}

// Updating reports whether an update of the function is under way (BeginUpdate).
func (r *Registry) Updating(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.updating[name]
}

// FunctionARN is the function's ARN, qualified when qualifier is not empty.
func (r *Registry) FunctionARN(name, qualifier string) string {
	arn := "arn:aws:lambda:" + r.cfg.Region + ":" + r.cfg.AccountID + ":function:" + name
	if qualifier != "" {
		arn += ":" + qualifier
	}
	return arn
}

// AccountID is the account the registry's ARNs name.
func (r *Registry) AccountID() string { return r.cfg.AccountID }

// Region is the region the registry's ARNs name.
func (r *Registry) Region() string { return r.cfg.Region }

// FunctionNotFound is Lambda's ResourceNotFoundException for a function (qualified
// when qualifier is not empty).
func (r *Registry) FunctionNotFound(name, qualifier string) error {
	return r.functionNotFound(name, qualifier)
}

func (r *Registry) functionNotFound(name, qualifier string) *awserr.Error {
	return awserr.NotFound("Function not found: %s", r.FunctionARN(name, qualifier))
}

// validKeyToken reports whether s can be part of a KV key (Lambda's names and
// qualifiers always can; anything else cannot exist).
func validKeyToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
