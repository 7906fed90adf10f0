package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
)

// Key is an access key shoal accepts.
type Key struct {
	Profile         string // the credentials file's section it came from
	AccessKeyID     string
	SecretAccessKey string

	// derived is the signing key of the scope last used: requests of one day and
	// region reuse it.
	derived atomic.Pointer[derivedKey]
}

// derivedKey is a signing key: HMAC("AWS4"+secret, date, region, service, "aws4_request").
type derivedKey struct {
	date, region, service string
	key                   []byte
}

// signingKey returns the signing key for c's scope, derived once per scope.
func (k *Key) signingKey(c *Credential) *derivedKey {
	if d := k.derived.Load(); d != nil && d.date == c.Date && d.region == c.Region && d.service == c.Service {
		return d
	}
	sum := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	key := sum([]byte("AWS4"+k.SecretAccessKey), c.Date)
	key = sum(key, c.Region)
	key = sum(key, c.Service)
	key = sum(key, "aws4_request")
	d := &derivedKey{date: c.Date, region: c.Region, service: c.Service, key: key}
	k.derived.Store(d)
	return d
}

// Keys is the set of access keys shoal accepts: every profile of an AWS
// shared-credentials file that has aws_access_key_id and aws_secret_access_key.
// When read from a file it follows the file: a lookup at most once a second
// checks whether it changed and reads it again, so keys can be added and removed
// while shoal runs. It is safe for concurrent use.
type Keys struct {
	path  string // "" for a fixed set
	clock clock.Clock

	set atomic.Pointer[keySet]
	// nextCheck is when (unix nanoseconds) the file is next looked at.
	nextCheck atomic.Int64

	mu sync.Mutex // guards stamp; held while reloading
	// stamp is the file's modification time and size when last read.
	stamp fileStamp
}

type keySet map[string]*Key // by access key id

type fileStamp struct {
	mod  time.Time
	size int64
}

// reloadEvery is how often a file-backed Keys looks at its file.
const reloadEvery = time.Second

// StaticKeys returns a fixed set of keys.
func StaticKeys(keys ...*Key) (*Keys, error) {
	k := &Keys{}
	set, err := newKeySet(keys)
	if err != nil {
		return nil, err
	}
	k.set.Store(&set)
	return k, nil
}

// OpenKeys reads the credentials file at path. It fails if the file cannot be
// read or parsed, or holds no key.
func OpenKeys(path string, clk clock.Clock) (*Keys, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	k := &Keys{path: path, clock: clk}
	if err := k.reload(true); err != nil {
		return nil, err
	}
	k.nextCheck.Store(clk.Now().Add(reloadEvery).UnixNano())
	return k, nil
}

// Path is the credentials file the keys come from ("" for a fixed set).
func (k *Keys) Path() string { return k.path }

// All returns the keys, in no particular order.
func (k *Keys) All() []*Key {
	set := *k.set.Load()
	out := make([]*Key, 0, len(set))
	for _, key := range set {
		out = append(out, key)
	}
	return out
}

// Lookup returns the key with the access key id, or nil.
func (k *Keys) Lookup(accessKeyID string) *Key {
	if k.path != "" {
		if now := k.clock.Now().UnixNano(); now >= k.nextCheck.Load() {
			k.nextCheck.Store(now + int64(reloadEvery))
			// A file that became unreadable or invalid keeps the keys read last.
			_ = k.reload(false)
		}
	}
	return (*k.set.Load())[accessKeyID]
}

// reload reads the file again if it changed since it was last read (always
// when force).
func (k *Keys) reload(force bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	info, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	stamp := fileStamp{mod: info.ModTime(), size: info.Size()}
	if !force && stamp == k.stamp {
		return nil
	}
	profiles, err := ReadCredentialsFile(k.path)
	if err != nil {
		return err
	}
	keys := make([]*Key, 0, len(profiles))
	for _, p := range profiles {
		if old := k.set.Load(); old != nil { // keep derived keys of unchanged entries
			if prev := (*old)[p.AccessKeyID]; prev != nil && prev.SecretAccessKey == p.SecretAccessKey && prev.Profile == p.Profile {
				keys = append(keys, prev)
				continue
			}
		}
		keys = append(keys, &Key{Profile: p.Profile, AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey})
	}
	set, err := newKeySet(keys)
	if err != nil {
		return fmt.Errorf("credentials file %s: %w", k.path, err)
	}
	if len(set) == 0 {
		return fmt.Errorf("credentials file %s: no profile has aws_access_key_id and aws_secret_access_key", k.path)
	}
	k.set.Store(&set)
	k.stamp = stamp
	return nil
}

func newKeySet(keys []*Key) (keySet, error) {
	set := make(keySet, len(keys))
	for _, key := range keys {
		if prev, ok := set[key.AccessKeyID]; ok && prev.SecretAccessKey != key.SecretAccessKey {
			return nil, fmt.Errorf("access key %s has two secrets (profiles %s and %s)", key.AccessKeyID, prev.Profile, key.Profile)
		}
		set[key.AccessKeyID] = key
	}
	return set, nil
}

// Profile is one section of a credentials file that holds a key.
type Profile struct {
	Profile         string
	AccessKeyID     string
	SecretAccessKey string
}

// ReadCredentialsFile reads the profiles that hold an access key from an AWS
// shared-credentials file.
func ReadCredentialsFile(path string) ([]Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	profiles, err := ParseCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return profiles, nil
}

// ParseCredentials reads the shared-credentials format the AWS SDKs read:
// [profile] sections of key = value lines; # and ; start comments; an indented
// line continues the value above it (and is ignored here). It returns, in file
// order, the profiles that have both aws_access_key_id and
// aws_secret_access_key. A later section of the same name adds to the earlier.
func ParseCredentials(r io.Reader) ([]Profile, error) {
	var (
		order    []string
		sections = map[string]*Profile{}
		cur      *Profile
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			name, ok := strings.CutSuffix(line, "]")
			if !ok {
				return nil, fmt.Errorf("line %d: section %q has no closing ]", n, line)
			}
			name = strings.TrimSpace(name[1:])
			if name == "" {
				return nil, fmt.Errorf("line %d: empty section name", n)
			}
			if cur = sections[name]; cur == nil {
				cur = &Profile{Profile: name}
				sections[name] = cur
				order = append(order, name)
			}
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			continue // a nested value (e.g. s3 =\n  max_concurrent_requests = 20)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value, got %q", n, line)
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %q before any [profile]", n, strings.TrimSpace(k))
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_access_key_id":
			cur.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			cur.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out []Profile
	for _, name := range order {
		if p := sections[name]; p.AccessKeyID != "" && p.SecretAccessKey != "" {
			out = append(out, *p)
		}
	}
	return out, nil
}

// NewKey returns a fresh key pair shaped as AWS's: an access key id of "AKIA"
// and 16 characters of base32, and a secret of 40 characters of base64, both
// from rnd (crypto/rand when nil).
func NewKey(rnd io.Reader) (Profile, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	const (
		idChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
		secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	)
	pick := func(alphabet string, n int) (string, error) {
		// Both alphabets have a power-of-two size, so b % len is uniform.
		b := make([]byte, n)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return "", fmt.Errorf("credentials: random: %w", err)
		}
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		return string(b), nil
	}
	id, err := pick(idChars, 16)
	if err != nil {
		return Profile{}, err
	}
	secret, err := pick(secretChars, 40)
	if err != nil {
		return Profile{}, err
	}
	return Profile{Profile: "default", AccessKeyID: "AKIA" + id, SecretAccessKey: secret}, nil
}

// EnsureCredentialsFile writes a credentials file with a fresh key under
// [default] at path, mode 0600, unless a file is there already. created says it
// wrote one. The file appears whole or not at all, and never replaces another.
func EnsureCredentialsFile(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("credentials: %w", err)
	}
	p, err := NewKey(nil)
	if err != nil {
		return false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".credentials-*")
	if err != nil {
		return false, fmt.Errorf("credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Access keys of shoal's Lambda API, written by shoal up. Each profile with a key\n")
	fmt.Fprintf(&buf, "# is accepted; add or remove profiles while shoal runs.\n")
	fmt.Fprintf(&buf, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", p.Profile, p.AccessKeyID, p.SecretAccessKey)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("credentials: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return false, fmt.Errorf("credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("credentials: %w", err)
	}
	// A hard link does not replace an existing file: if another process wrote
	// one meanwhile, that one stays.
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	// A file system without hard links: create the file exclusively instead.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("credentials: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("credentials: %w", err)
	}
	return true, nil
}
