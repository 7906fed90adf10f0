package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// fingerprint identifies $LATEST's code and configuration, ignoring the fields that
// change on every write, so that publishing an unchanged function is recognised.
func fingerprint(v *Version) string {
	c := *v
	c.RevisionId, c.LastModified, c.Version, c.FunctionArn = "", "", "", ""
	c.State, c.StateReason, c.StateReasonCode = "", "", ""
	c.LastUpdateStatus, c.LastUpdateStatusReason, c.LastUpdateStatusReasonCode = "", "", ""
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// publish adds a version made from rec.Latest, or returns the last published one when
// $LATEST has not changed since (as Lambda does).
func (r *Registry) publish(rec *functionRecord, description string) *Version {
	fp := fingerprint(rec.Latest)
	if rec.PublishedFingerprint == fp {
		if v, ok := rec.Versions[strconv.Itoa(rec.LastVersion)]; ok {
			return v
		}
	}
	rec.LastVersion++
	n := strconv.Itoa(rec.LastVersion)
	v := *rec.Latest
	v.Version = n
	v.FunctionArn = r.FunctionARN(v.FunctionName, n)
	v.RevisionId = NewRevisionID()
	v.LastModified = formatTime(r.cfg.Clock.Now())
	if description != "" {
		v.Description = description
	}
	if v.SnapStart != nil && v.SnapStart.ApplyOn == SnapStartPublishedVersions {
		v.SnapStart = &SnapStart{ApplyOn: SnapStartPublishedVersions, OptimizationStatus: SnapStartOn}
	}
	if rec.Versions == nil {
		rec.Versions = make(map[string]*Version)
	}
	rec.Versions[n] = &v
	rec.PublishedFingerprint = fp
	// As on Lambda, publishing a version gives $LATEST a new RevisionId (returning
	// the last version again does not).
	rec.Latest.RevisionId = NewRevisionID()
	return &v
}

// ConfigKey names what this configuration runs: equal keys, equal code and
// settings. $LATEST's changes with its code or configuration and not with the
// RevisionId changes that publishing and tagging make, so a router can key warm
// environments on it; a published version's is its RevisionId, which never changes.
func (v *Version) ConfigKey() string {
	if v.configKey != "" {
		return v.configKey
	}
	return v.RevisionId
}

// PublishVersion publishes $LATEST. codeSha256 and revisionID, when not empty, must
// match $LATEST's.
func (r *Registry) PublishVersion(ctx context.Context, name, codeSha256, description, revisionID string) (*Version, error) {
	return r.PublishVersionTo(ctx, name, "", codeSha256, description, revisionID)
}

// ListVersions returns $LATEST then the published versions in ascending order.
func (r *Registry) ListVersions(ctx context.Context, name string) ([]*Version, error) {
	rec, err := r.load(ctx, name)
	if err != nil {
		return nil, err
	}
	return append([]*Version{rec.Latest}, sortedVersions(rec)...), nil
}

// DeleteVersion deletes one published version. A version an alias points to, or
// that has a Provisioned Concurrency config, cannot be deleted. Deleting a version
// that does not exist succeeds, as on Lambda.
func (r *Registry) DeleteVersion(ctx context.Context, name, version string) error {
	var shas []string
	_, err := r.update(ctx, name, func(rec *functionRecord) error {
		v, ok := rec.Versions[version]
		if !ok {
			return errUnchanged
		}
		var users []string
		for _, a := range rec.Aliases {
			_, weighted := a.RoutingConfig.weight(version)
			if a.FunctionVersion == version || weighted {
				users = append(users, a.Name)
			}
		}
		if len(users) > 0 {
			sort.Strings(users)
			return awserr.Conflict("Unable to delete version because the following aliases reference it: [%s]", strings.Join(users, ", "))
		}
		delete(rec.Versions, version)
		delete(rec.Runtime, version)
		shas = append(r.pruneRollouts(rec), v.CodeSha256)
		shas = append(shas, pruneLayers(rec)...)
		delete(rec.Scaling, version)
		delete(rec.Policies, version)
		delete(rec.EventInvoke, version)
		if version == LatestPublished {
			rec.LatestPublishedFingerprint = ""
		}
		delete(rec.Provisioned, version)
		return nil
	})
	if err != nil {
		return err
	}
	r.deleteStatus(ctx, name, version)
	r.deleteVersionStatus(ctx, name, version)
	r.collectCode(ctx, shas...)
	return nil
}

// ResolveVersion returns the version to run for a qualifier: "" or "$LATEST", a
// version number, or an alias name (resolved to its version). It reads the in-memory
// copy and allocates nothing on success. The result is shared: do not modify it.
func (r *Registry) ResolveVersion(ctx context.Context, functionName, qualifier string) (*Version, error) {
	rec := r.cached(functionName)
	if rec == nil {
		var err error
		if rec, err = r.load(ctx, functionName); err != nil {
			if qualifier != "" {
				return nil, r.functionNotFound(functionName, qualifier)
			}
			return nil, err
		}
	}
	return r.resolve(rec, functionName, qualifier)
}

func (r *Registry) resolve(rec *functionRecord, name, qualifier string) (*Version, error) {
	if qualifier == "" || qualifier == Latest {
		return rec.Latest, nil
	}
	if v, ok := rec.Versions[qualifier]; ok {
		return v, nil
	}
	if a, ok := rec.Aliases[qualifier]; ok {
		if a.FunctionVersion == Latest {
			return rec.Latest, nil
		}
		if v, ok := rec.Versions[a.FunctionVersion]; ok {
			return v, nil
		}
	}
	return nil, r.functionNotFound(name, qualifier)
}

// isVersionNumber reports whether q names a version rather than an alias.
func isVersionNumber(q string) bool {
	if q == "" {
		return false
	}
	for i := 0; i < len(q); i++ {
		if q[i] < '0' || q[i] > '9' {
			return false
		}
	}
	return true
}
