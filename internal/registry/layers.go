package registry

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Layers live under "ly.<name>", one record per layer name holding every version
// that was not deleted and the highest number ever published (numbers are never
// reused, even once every version is gone). A layer's zip lives in the code store
// by its CodeSha256, beside function packages: the same content is stored once.
//
// A function that references a layer version keeps that version's CodeSha256 and
// unzipped size in its own record (functionRecord.Layers), so that deleting the
// layer version changes neither the function nor what its environments mount, as
// on Lambda; the zip stays in the code store while any version of any function
// refers to it.

// LayerVersion is one published version of a layer, with Lambda's field names. It
// never changes once published, but for its permissions (Policy).
type LayerVersion struct {
	LayerName       string `json:"LayerName"`
	LayerArn        string `json:"LayerArn"`
	LayerVersionArn string `json:"LayerVersionArn"`
	Version         int64  `json:"Version"`
	Description     string `json:"Description"`
	CreatedDate     string `json:"CreatedDate"`
	// CompatibleRuntimes and CompatibleArchitectures are nil when the request left
	// them out, and empty when it sent empty lists (Lambda shows the two apart).
	CompatibleRuntimes      []string `json:"CompatibleRuntimes"`
	CompatibleArchitectures []string `json:"CompatibleArchitectures"`
	LicenseInfo             string   `json:"LicenseInfo,omitempty"`
	CodeSha256              string   `json:"CodeSha256"`
	CodeSize                int64    `json:"CodeSize"`
	// UnzippedSize is the size of the layer's files, which counts towards the
	// unzipped limit of every function that uses it.
	UnzippedSize int64        `json:"UnzippedSize"`
	Policy       *LayerPolicy `json:"Policy,omitempty"`
}

// LayerPolicy is a layer version's resource-based policy: the statements
// AddLayerVersionPermission added, and the RevisionId of their last change.
type LayerPolicy struct {
	RevisionId string           `json:"RevisionId"`
	Statements []LayerStatement `json:"Statements"`
}

// LayerStatement is one statement of a layer version's policy, with the field
// names and order of Lambda's policy documents.
type LayerStatement struct {
	Sid    string `json:"Sid"`
	Effect string `json:"Effect"`
	// Principal is "*" or {"AWS":"arn:aws:iam::<account>:root"}.
	Principal json.RawMessage `json:"Principal"`
	Action    string          `json:"Action"`
	Resource  string          `json:"Resource"`
	// Condition limits the grant to an organization (OrganizationId).
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// layerRecord is everything stored about one layer name.
type layerRecord struct {
	LastVersion int64                    `json:"lastVersion"`
	Versions    map[string]*LayerVersion `json:"versions,omitempty"`
}

// layerContent is what a function keeps of a layer version it references.
type layerContent struct {
	CodeSha256   string `json:"codeSha256"`
	CodeSize     int64  `json:"codeSize"`
	UnzippedSize int64  `json:"unzippedSize"`
}

type cachedLayer struct {
	rec *layerRecord
	rev uint64
}

const layerPrefix = "ly."

// LayerARN is the ARN of a layer; LayerVersionARN names one of its versions.
func (r *Registry) LayerARN(name string) string {
	return "arn:aws:lambda:" + r.cfg.Region + ":" + r.cfg.AccountID + ":layer:" + name
}

// LayerVersionARN is the ARN of one version of a layer.
func (r *Registry) LayerVersionARN(name string, version int64) string {
	return r.LayerARN(name) + ":" + strconv.FormatInt(version, 10)
}

// layerVersionNotFound is the answer of the operations that read a layer version.
func layerVersionNotFound() *awserr.Error {
	return awserr.NotFound("The resource you requested does not exist.")
}

// layerVersionMissing is the answer of the permission operations, and of function
// configurations, for a layer version that does not exist.
func (r *Registry) layerVersionMissing(name string, version int64) *awserr.Error {
	return awserr.NotFound("Layer version %s does not exist.", r.LayerVersionARN(name, version))
}

// PublishLayerInput is a validated PublishLayerVersion request.
type PublishLayerInput struct {
	Name                    string
	ZipFile                 []byte
	Description             string
	LicenseInfo             string
	CompatibleRuntimes      []string
	CompatibleArchitectures []string
}

// PublishLayerVersion stores a new version of a layer (creating the layer) and
// returns it. Versions are numbered from 1 and never reused.
func (r *Registry) PublishLayerVersion(ctx context.Context, in PublishLayerInput) (*LayerVersion, error) {
	if !validKeyToken(in.Name) {
		return nil, awserr.InvalidParameter("invalid layer name %q", in.Name)
	}
	unzipped, err := unzippedSize(in.ZipFile)
	if err != nil {
		return nil, err
	}
	r.codeMu.RLock()
	defer r.codeMu.RUnlock()
	sha, err := r.putCode(ctx, in.ZipFile)
	if err != nil {
		return nil, err
	}
	var out *LayerVersion
	err = r.updateLayer(ctx, in.Name, true, func(rec *layerRecord) error {
		rec.LastVersion++
		n := rec.LastVersion
		lv := &LayerVersion{
			LayerName: in.Name, LayerArn: r.LayerARN(in.Name), LayerVersionArn: r.LayerVersionARN(in.Name, n),
			Version: n, Description: in.Description, CreatedDate: formatTime(r.cfg.Clock.Now()),
			CompatibleRuntimes: in.CompatibleRuntimes, CompatibleArchitectures: in.CompatibleArchitectures,
			LicenseInfo: in.LicenseInfo, CodeSha256: sha, CodeSize: int64(len(in.ZipFile)), UnzippedSize: unzipped,
		}
		if rec.Versions == nil {
			rec.Versions = make(map[string]*LayerVersion)
		}
		rec.Versions[strconv.FormatInt(n, 10)] = lv
		out = lv
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("layer version published", "layer", in.Name, "version", out.Version, "code_sha256", sha)
	return out, nil
}

// unzippedSize is the total size of a zip's files, as its directory declares it
// (the unpacking enforces the same limit on the bytes actually written).
func unzippedSize(zipData []byte) (int64, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return 0, awserr.InvalidParameter("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > 1<<50 {
			return 0, awserr.InvalidParameter("Could not unzip uploaded file. Please check your file, then try to upload again.")
		}
	}
	return int64(total), nil
}

// GetLayerVersion returns one version of a layer.
func (r *Registry) GetLayerVersion(ctx context.Context, name string, version int64) (*LayerVersion, error) {
	rec, err := r.loadLayer(ctx, name)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, layerVersionNotFound()
	}
	lv, ok := rec.Versions[strconv.FormatInt(version, 10)]
	if !ok {
		return nil, layerVersionNotFound()
	}
	return lv, nil
}

// ListLayerVersions returns a layer's versions, newest first; none for a layer that
// does not exist.
func (r *Registry) ListLayerVersions(ctx context.Context, name string) ([]*LayerVersion, error) {
	rec, err := r.loadLayer(ctx, name)
	if err != nil || rec == nil {
		return nil, err
	}
	return sortedLayerVersions(rec), nil
}

func sortedLayerVersions(rec *layerRecord) []*LayerVersion {
	out := make([]*LayerVersion, 0, len(rec.Versions))
	for _, lv := range rec.Versions {
		out = append(out, lv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out
}

// ListLayers returns every layer that has a version, by name.
func (r *Registry) ListLayers(ctx context.Context) []LayerSummary {
	r.mu.RLock()
	out := make([]LayerSummary, 0, len(r.layers))
	for name, c := range r.layers {
		if c.rec == nil || len(c.rec.Versions) == 0 {
			continue
		}
		out = append(out, LayerSummary{Name: name, Arn: r.LayerARN(name), Versions: sortedLayerVersions(c.rec)})
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LayerSummary is a layer name with its versions, newest first (ListLayers).
type LayerSummary struct {
	Name     string
	Arn      string
	Versions []*LayerVersion
}

// DeleteLayerVersion deletes one version of a layer. Deleting a version that does
// not exist succeeds, as on Lambda. Functions that use the version keep it.
func (r *Registry) DeleteLayerVersion(ctx context.Context, name string, version int64) error {
	if !validKeyToken(name) {
		return nil
	}
	var sha string
	err := r.updateLayer(ctx, name, false, func(rec *layerRecord) error {
		key := strconv.FormatInt(version, 10)
		lv, ok := rec.Versions[key]
		if !ok {
			return errUnchanged
		}
		sha = lv.CodeSha256
		delete(rec.Versions, key)
		return nil
	})
	if err != nil && !errors.Is(err, errNoLayer) {
		return err
	}
	if sha != "" {
		r.log.Info("layer version deleted", "layer", name, "version", version)
		r.collectCode(ctx, sha)
	}
	return nil
}

// AddLayerVersionPermission adds a statement to a layer version's policy and
// returns it with the policy's new RevisionId. revisionID, when not empty, must be
// the policy's current one.
func (r *Registry) AddLayerVersionPermission(ctx context.Context, name string, version int64, st LayerStatement, revisionID string) (LayerStatement, string, error) {
	var rev string
	st.Effect = "Allow"
	st.Resource = r.LayerVersionARN(name, version)
	err := r.changePolicy(ctx, name, version, func(p *LayerPolicy) error {
		if err := checkPolicyRevision(p.RevisionId, revisionID); err != nil {
			return err
		}
		for _, s := range p.Statements {
			if s.Sid == st.Sid {
				return awserr.Conflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", st.Sid)
			}
		}
		p.Statements = append(p.Statements, st)
		if n := policySize(p); n > maxLayerPolicyBytes {
			return &awserr.Error{Code: "PolicyLengthExceededException", Status: 400, Type: "User",
				Message: "The final policy size (" + strconv.Itoa(n) + ") is bigger than the limit (" + strconv.Itoa(maxLayerPolicyBytes) + ")."}
		}
		p.RevisionId = NewRevisionID()
		rev = p.RevisionId
		return nil
	})
	return st, rev, err
}

// maxLayerPolicyBytes is Lambda's limit on a resource-based policy (20 KB).
const maxLayerPolicyBytes = 20480

func policySize(p *LayerPolicy) int {
	b, _ := json.Marshal(LayerPolicyDocument(p))
	return len(b)
}

// LayerPolicyDocument is the IAM policy document of a layer version's statements,
// as GetLayerVersionPolicy returns it (Version 2012-10-17, Id "default").
func LayerPolicyDocument(p *LayerPolicy) any {
	return struct {
		Version   string           `json:"Version"`
		ID        string           `json:"Id"`
		Statement []LayerStatement `json:"Statement"`
	}{"2012-10-17", "default", p.Statements}
}

func checkPolicyRevision(current, given string) error {
	if given != "" && given != current {
		return awserr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the latest Revision Id")
	}
	return nil
}

// RemoveLayerVersionPermission removes a statement from a layer version's policy.
func (r *Registry) RemoveLayerVersionPermission(ctx context.Context, name string, version int64, sid, revisionID string) error {
	return r.changePolicy(ctx, name, version, func(p *LayerPolicy) error {
		if err := checkPolicyRevision(p.RevisionId, revisionID); err != nil {
			return err
		}
		for i, s := range p.Statements {
			if s.Sid == sid {
				p.Statements = append(p.Statements[:i:i], p.Statements[i+1:]...)
				p.RevisionId = NewRevisionID()
				return nil
			}
		}
		return awserr.NotFound("Statement %s is not found in resource policy.", sid)
	})
}

// GetLayerVersionPolicy returns a layer version's policy; NotFound when it has no
// statement.
func (r *Registry) GetLayerVersionPolicy(ctx context.Context, name string, version int64) (*LayerPolicy, error) {
	lv, err := r.permissionTarget(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if lv.Policy == nil || len(lv.Policy.Statements) == 0 {
		return nil, awserr.NotFound("No policy is associated with the given resource.")
	}
	return lv.Policy, nil
}

// permissionTarget is the layer version a permission operation names.
func (r *Registry) permissionTarget(ctx context.Context, name string, version int64) (*LayerVersion, error) {
	lv, err := r.GetLayerVersion(ctx, name, version)
	if awserr.Is(err, awserr.CodeResourceNotFound) {
		return nil, r.layerVersionMissing(name, version)
	}
	return lv, err
}

// changePolicy applies change to a copy of a layer version's policy and stores it.
func (r *Registry) changePolicy(ctx context.Context, name string, version int64, change func(p *LayerPolicy) error) error {
	if !validKeyToken(name) {
		return r.layerVersionMissing(name, version)
	}
	err := r.updateLayer(ctx, name, false, func(rec *layerRecord) error {
		lv, ok := rec.Versions[strconv.FormatInt(version, 10)]
		if !ok {
			return r.layerVersionMissing(name, version)
		}
		p := &LayerPolicy{}
		if lv.Policy != nil {
			p = lv.Policy
		}
		if err := change(p); err != nil {
			return err
		}
		lv.Policy = p
		if len(p.Statements) == 0 {
			lv.Policy = nil
		}
		return nil
	})
	if errors.Is(err, errNoLayer) {
		return r.layerVersionMissing(name, version)
	}
	return err
}

// errNoLayer is updateLayer's answer for a layer that does not exist.
var errNoLayer = errors.New("registry: no such layer")

// updateLayer applies change to a fresh copy of a layer's record and stores it with
// a compare-and-set, retrying when another writer got there first. create makes the
// record when there is none; otherwise a missing layer is errNoLayer.
func (r *Registry) updateLayer(ctx context.Context, name string, create bool, change func(rec *layerRecord) error) error {
	key := layerPrefix + name
	for range maxCASAttempts {
		rec := new(layerRecord)
		var rev uint64
		e, err := r.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if !create {
				return errNoLayer
			}
		case err != nil:
			return awserr.Service(err, "failed to read layer %s", name)
		default:
			if err := json.Unmarshal(e.Value(), rec); err != nil {
				return awserr.Service(err, "failed to decode layer %s", name)
			}
			rev = e.Revision()
		}
		if err := change(rec); errors.Is(err, errUnchanged) {
			return nil
		} else if err != nil {
			return err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return awserr.Service(err, "failed to encode layer %s", name)
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = r.kv.Create(ctx, key, data)
		} else {
			newRev, err = r.kv.Update(ctx, key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // lost the race: read again
		}
		if err != nil {
			return awserr.Service(err, "failed to store layer %s", name)
		}
		r.storeLayer(name, rec, newRev)
		return nil
	}
	return awserr.Conflict("The operation cannot be performed at this time. An update is in progress for resource: %s", r.LayerARN(name))
}

// loadLayer returns a layer's record, from the cache or from KV; nil when the
// layer does not exist.
func (r *Registry) loadLayer(ctx context.Context, name string) (*layerRecord, error) {
	if !validKeyToken(name) {
		return nil, nil
	}
	r.mu.RLock()
	c := r.layers[name]
	r.mu.RUnlock()
	if c != nil {
		return c.rec, nil
	}
	e, err := r.kv.Get(ctx, layerPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, awserr.Service(err, "failed to read layer %s", name)
	}
	rec := new(layerRecord)
	if err := json.Unmarshal(e.Value(), rec); err != nil {
		return nil, awserr.Service(err, "failed to decode layer %s", name)
	}
	r.storeLayer(name, rec, e.Revision())
	return rec, nil
}

// storeLayer puts a layer record (nil: deleted) in the cache unless the cache
// holds a newer revision.
func (r *Registry) storeLayer(name string, rec *layerRecord, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.layers[name]; ok && c.rev >= rev {
		return
	}
	r.layers[name] = &cachedLayer{rec: rec, rev: rev}
}

// layerUsageLocked is the total code size of the layer versions (mu held).
func (r *Registry) layerUsageLocked() (size int64) {
	for _, c := range r.layers {
		if c.rec == nil {
			continue
		}
		for _, lv := range c.rec.Versions {
			size += lv.CodeSize
		}
	}
	return size
}

// LayerCode returns the CodeSha256 of each of the version's layers, in the order
// of Layers: what its environments unpack, in that order, into /opt. A layer
// recorded before shoal kept layer contents has no code and is left out.
func (v *Version) LayerCode() []string { return v.layerCode }

// setLayerCode fills the layer code of every version of rec, once the record is
// about to be cached (it is immutable from then on).
func setLayerCode(rec *functionRecord) {
	set := func(v *Version) {
		v.layerCode = nil
		for _, l := range v.Layers {
			if c, ok := rec.Layers[l.Arn]; ok {
				v.layerCode = append(v.layerCode, c.CodeSha256)
			}
		}
	}
	set(rec.Latest)
	for _, v := range rec.Versions {
		set(v)
	}
}

// layerArnParts splits a layer version ARN into region, account, name and version;
// ok is false for anything else (AWS's own "awslayer" ARNs among them).
func layerArnParts(arn string) (region, account, name string, version int64, ok bool) {
	p := strings.Split(arn, ":")
	if len(p) != 8 || p[0] != "arn" || p[2] != "lambda" || p[5] != "layer" {
		return "", "", "", 0, false
	}
	n, err := strconv.ParseInt(p[7], 10, 64)
	if err != nil {
		return "", "", "", 0, false
	}
	return p[3], p[4], p[6], n, true
}

// attachLayers resolves the layers v names against the layer store and records
// what the function keeps of each in rec.Layers; it fills each Layer's CodeSize.
// A layer version the function already references is kept as recorded, even if it
// was deleted since. It refuses a layer of another region, one that does not exist,
// and code and layers that together exceed the unzipped limit. The caller holds
// codeMu read-locked until rec is committed.
func (r *Registry) attachLayers(ctx context.Context, rec *functionRecord, v *Version) error {
	if len(v.Layers) == 0 {
		return nil
	}
	layers := make([]Layer, len(v.Layers))
	total := rec.Unzipped
	for i, l := range v.Layers {
		c, ok := rec.Layers[l.Arn]
		if !ok {
			region, account, name, n, parsed := layerArnParts(l.Arn)
			if parsed && region != r.cfg.Region {
				return awserr.InvalidParameter("Layers are not in the same region as the function. Layers are expected to be in region %s.", r.cfg.Region)
			}
			if !parsed || account != r.cfg.AccountID {
				return awserr.InvalidParameter("Layer version %s does not exist.", l.Arn)
			}
			lv, err := r.GetLayerVersion(ctx, name, n)
			if awserr.Is(err, awserr.CodeResourceNotFound) {
				return awserr.InvalidParameter("Layer version %s does not exist.", l.Arn)
			}
			if err != nil {
				return err
			}
			c = layerContent{CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize, UnzippedSize: lv.UnzippedSize}
			if rec.Layers == nil {
				rec.Layers = make(map[string]layerContent)
			}
			rec.Layers[l.Arn] = c
		}
		layers[i] = Layer{Arn: l.Arn, CodeSize: c.CodeSize}
		total += c.UnzippedSize
	}
	if total > r.cfg.MaxUnzippedCodeBytes {
		return awserr.InvalidParameter("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.",
			r.cfg.MaxUnzippedCodeBytes, total)
	}
	v.Layers = layers
	return nil
}

// checkCombinedSize refuses code of unzipped bytes that, with $LATEST's layers,
// exceeds the unzipped limit.
func (r *Registry) checkCombinedSize(rec *functionRecord, unzipped int64) error {
	if len(rec.Latest.Layers) == 0 {
		return nil
	}
	total := unzipped
	for _, l := range rec.Latest.Layers {
		total += rec.Layers[l.Arn].UnzippedSize
	}
	if total > r.cfg.MaxUnzippedCodeBytes {
		return awserr.InvalidParameter("Function code combined with layers exceeds the maximum allowed size of %d bytes. The actual size is %d bytes.",
			r.cfg.MaxUnzippedCodeBytes, total)
	}
	return nil
}

// pruneLayers forgets the layer versions no version of rec references any more
// and returns their code, for garbage collection once rec is committed.
func pruneLayers(rec *functionRecord) (dropped []string) {
	used := map[string]bool{}
	mark := func(v *Version) {
		for _, l := range v.Layers {
			used[l.Arn] = true
		}
	}
	mark(rec.Latest)
	for _, v := range rec.Versions {
		mark(v)
	}
	for _, ro := range rec.Rollouts {
		if ro.Previous != nil {
			mark(ro.Previous)
		}
	}
	for arn, c := range rec.Layers {
		if !used[arn] {
			dropped = append(dropped, c.CodeSha256)
			delete(rec.Layers, arn)
		}
	}
	if len(rec.Layers) == 0 {
		rec.Layers = nil
	}
	return dropped
}

// layerShas is the code of every layer version rec references.
func layerShas(rec *functionRecord) []string {
	out := make([]string, 0, len(rec.Layers))
	for _, c := range rec.Layers {
		out = append(out, c.CodeSha256)
	}
	return out
}
