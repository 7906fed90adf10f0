package registry

import (
	"context"
	"crypto/rand"
	"sort"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Function URLs: at most one per function ($LATEST) and one per alias, each with
// an id of its own (the host name's first label on AWS:
// <id>.lambda-url.<region>.on.aws). The registry keeps an index from id to
// function and qualifier, so that the URL front door finds a function in a map.

// Function URL auth types and invoke modes, as Lambda spells them.
const (
	URLAuthNone          = "NONE"
	URLAuthIAM           = "AWS_IAM"
	URLInvokeBuffered    = "BUFFERED"
	URLInvokeStream      = "RESPONSE_STREAM"
	urlIDLength          = 32
	urlIDAlphabet        = "abcdefghijklmnopqrstuvwxyz0123456789"
	maxURLIDCollisionTry = 8
)

// Cors is a function URL's CORS configuration, as Lambda's API names it.
type Cors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

// FunctionURL is one function URL's configuration.
type FunctionURL struct {
	// ID is the URL's id: 32 lower-case letters and digits.
	ID string `json:"id"`
	// Function and Qualifier name what the URL invokes ("" for $LATEST).
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	AuthType  string `json:"authType"`
	Cors      *Cors  `json:"cors,omitempty"`
	// InvokeMode is "" until one is set, which Lambda runs as BUFFERED (and
	// answers without InvokeMode in Create and Update).
	InvokeMode       string `json:"invokeMode,omitempty"`
	CreationTime     string `json:"creationTime"`
	LastModifiedTime string `json:"lastModifiedTime"`
}

// Mode is the URL's invoke mode, BUFFERED unless set.
func (u *FunctionURL) Mode() string {
	if u.InvokeMode == "" {
		return URLInvokeBuffered
	}
	return u.InvokeMode
}

// urlKey is the key of a qualifier's URL in the function record.
func urlKey(qualifier string) string { return policyKey(qualifier) }

// FunctionURLChange is what CreateFunctionUrlConfig or UpdateFunctionUrlConfig
// sets; a nil field is left as it is (Create: unset).
type FunctionURLChange struct {
	AuthType   *string
	Cors       *Cors
	InvokeMode *string
}

// urlNotFoundForWrite is what Create and Update answer for a missing function or alias.
func urlFunctionMissing() error { return awserr.NotFound("Function does not exist") }

// urlMissing is what Get, Delete and Update answer for a missing URL (and Get and
// Delete for a missing function or alias).
func urlMissing() error { return awserr.NotFound("The resource you requested does not exist.") }

// urlTarget checks that the function has the alias (qualifier "" is the function).
func urlTarget(rec *functionRecord, qualifier string) bool {
	return qualifier == "" || rec.Aliases[qualifier] != nil
}

// CreateFunctionURL gives the function (qualifier "") or one of its aliases a URL.
func (r *Registry) CreateFunctionURL(ctx context.Context, function, qualifier string, c FunctionURLChange) (*FunctionURL, error) {
	if r.cached(function) == nil {
		if _, err := r.load(ctx, function); err != nil {
			return nil, urlFunctionMissing()
		}
	}
	id, err := r.newURLID()
	if err != nil {
		return nil, err
	}
	var out *FunctionURL
	_, err = r.update(ctx, function, func(rec *functionRecord) error {
		if !urlTarget(rec, qualifier) {
			return urlFunctionMissing()
		}
		key := urlKey(qualifier)
		if rec.URLs[key] != nil {
			return awserr.Conflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", r.FunctionARN(function, qualifier))
		}
		now := formatTime(r.cfg.Clock.Now())
		u := &FunctionURL{ID: id, Function: function, Qualifier: qualifier, CreationTime: now, LastModifiedTime: now}
		applyURLChange(u, c)
		if rec.URLs == nil {
			rec.URLs = map[string]*FunctionURL{}
		}
		rec.URLs[key] = u
		out = u
		return nil
	})
	if err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) {
			return nil, urlFunctionMissing()
		}
		return nil, err
	}
	return out, nil
}

func applyURLChange(u *FunctionURL, c FunctionURLChange) {
	if c.AuthType != nil {
		u.AuthType = *c.AuthType
	}
	if c.Cors != nil {
		u.Cors = c.Cors
	}
	if c.InvokeMode != nil {
		u.InvokeMode = *c.InvokeMode
	}
}

// UpdateFunctionURL changes a URL's configuration.
func (r *Registry) UpdateFunctionURL(ctx context.Context, function, qualifier string, c FunctionURLChange) (*FunctionURL, error) {
	if r.cached(function) == nil {
		if _, err := r.load(ctx, function); err != nil {
			return nil, urlFunctionMissing()
		}
	}
	var out *FunctionURL
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		if !urlTarget(rec, qualifier) {
			return urlFunctionMissing()
		}
		u := rec.URLs[urlKey(qualifier)]
		if u == nil {
			return urlMissing()
		}
		applyURLChange(u, c)
		u.LastModifiedTime = formatTime(r.cfg.Clock.Now())
		out = u
		return nil
	})
	if err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) && r.cached(function) == nil {
			return nil, urlFunctionMissing()
		}
		return nil, err
	}
	return out, nil
}

// GetFunctionURL returns the URL of the function or alias.
func (r *Registry) GetFunctionURL(ctx context.Context, function, qualifier string) (*FunctionURL, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, urlMissing()
	}
	u := rec.URLs[urlKey(qualifier)]
	if u == nil || !urlTarget(rec, qualifier) {
		return nil, urlMissing()
	}
	return u, nil
}

// DeleteFunctionURL removes the URL of the function or alias.
func (r *Registry) DeleteFunctionURL(ctx context.Context, function, qualifier string) error {
	if r.cached(function) == nil {
		if _, err := r.load(ctx, function); err != nil {
			return urlMissing()
		}
	}
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		key := urlKey(qualifier)
		if rec.URLs[key] == nil || !urlTarget(rec, qualifier) {
			return urlMissing()
		}
		delete(rec.URLs, key)
		return nil
	})
	if awserr.Is(err, awserr.CodeResourceNotFound) {
		return urlMissing()
	}
	return err
}

// ListFunctionURLs returns the URLs of a function and its aliases, the function's
// first, then by alias name.
func (r *Registry) ListFunctionURLs(ctx context.Context, function string) ([]*FunctionURL, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, urlFunctionMissing()
	}
	out := make([]*FunctionURL, 0, len(rec.URLs))
	for _, u := range rec.URLs {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Qualifier < out[j].Qualifier })
	return out, nil
}

// ResolveFunctionURL returns the URL with id from the in-memory copy, and the
// policy of what it invokes (nil if none); ok is false when no URL has the id.
// Both are shared: do not modify them.
func (r *Registry) ResolveFunctionURL(id string) (u *FunctionURL, policy *Policy, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ref, ok := r.urlIndex[id]
	if !ok {
		return nil, nil, false
	}
	c := r.funcs[ref.function]
	if c == nil || c.rec == nil {
		return nil, nil, false
	}
	key := urlKey(ref.qualifier)
	u = c.rec.URLs[key]
	if u == nil || u.ID != id {
		return nil, nil, false
	}
	return u, c.rec.Policies[key], true
}

type urlRef struct{ function, qualifier string }

// indexURLs replaces the index entries of function's URLs (old → rec). mu is held.
func (r *Registry) indexURLs(function string, old, rec *functionRecord) {
	if r.urlIndex == nil {
		r.urlIndex = map[string]urlRef{}
	}
	if old != nil {
		for _, u := range old.URLs {
			if ref, ok := r.urlIndex[u.ID]; ok && ref.function == function {
				delete(r.urlIndex, u.ID)
			}
		}
	}
	if rec != nil {
		for _, u := range rec.URLs {
			r.urlIndex[u.ID] = urlRef{function: function, qualifier: u.Qualifier}
		}
	}
}

// newURLID returns an id no URL in the cache has.
func (r *Registry) newURLID() (string, error) {
	for range maxURLIDCollisionTry {
		var b [urlIDLength]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", awserr.Service(err, "failed to make a URL id")
		}
		for i := range b {
			b[i] = urlIDAlphabet[int(b[i])%len(urlIDAlphabet)]
		}
		id := string(b[:])
		r.mu.RLock()
		_, taken := r.urlIndex[id]
		r.mu.RUnlock()
		if !taken {
			return id, nil
		}
	}
	return "", awserr.Service(nil, "failed to make a unique URL id")
}
