package registry

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/shoal-dev/shoal/internal/awserr"
)

func statement(sid, action string, p Principal) Statement {
	return Statement{Sid: sid, Effect: "Allow", Principal: p, Action: action,
		Resource: "arn:aws:lambda:us-east-1:123456789012:function:fn"}
}

func TestPolicyRevisions(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	created := create(t, r, "fn")

	if _, err := r.AddPermission(ctx, "fn", "", statement("s3", "lambda:InvokeFunction", Principal{Service: "s3.amazonaws.com"}), "wrong"); !awserr.Is(err, awserr.CodePreconditionFailed) {
		t.Fatalf("wrong revision: %v", err)
	}
	// Without a policy, the function's RevisionId is the one to match.
	if _, err := r.AddPermission(ctx, "fn", "", statement("s3", "lambda:InvokeFunction", Principal{Service: "s3.amazonaws.com"}), created.RevisionId); err != nil {
		t.Fatal(err)
	}
	p, err := r.GetPolicy(ctx, "fn", "")
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := r.ResolveVersion(ctx, "fn", "")
	if p.RevisionId == created.RevisionId || p.RevisionId != latest.RevisionId {
		t.Errorf("policy revision %s, function's before %s and after %s", p.RevisionId, created.RevisionId, latest.RevisionId)
	}
	_, err = r.AddPermission(ctx, "fn", "", statement("s3", "lambda:InvokeFunction", Principal{Service: "sqs.amazonaws.com"}), "")
	wantCode(t, err, awserr.CodeResourceConflict)

	// Publishing renews $LATEST's RevisionId, not the policy's, which changes match.
	if _, err := r.PublishVersion(ctx, "fn", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetPolicy(ctx, "fn", "1"); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("version 1 has a policy of its own: %v", err)
	}
	if _, err := r.AddPermission(ctx, "fn", "", statement("all", "lambda:InvokeFunctionUrl", Everyone), p.RevisionId); err != nil {
		t.Fatal(err)
	}
	// A version's RevisionId does not change with its policy.
	v1, _ := r.ResolveVersion(ctx, "fn", "1")
	if _, err := r.AddPermission(ctx, "fn", "1", statement("v", "lambda:InvokeFunction", Principal{AWS: "arn:aws:iam::123456789012:root"}), v1.RevisionId); err != nil {
		t.Fatal(err)
	}
	if again, _ := r.ResolveVersion(ctx, "fn", "1"); again.RevisionId != v1.RevisionId {
		t.Error("a permission changed version 1's RevisionId")
	}
	_, err = r.AddPermission(ctx, "fn", "7", statement("v", "lambda:InvokeFunction", Everyone), "")
	wantCode(t, err, awserr.CodeResourceNotFound)
	_, err = r.AddPermission(ctx, "fn", "nosuchalias", statement("v", "lambda:InvokeFunction", Everyone), "")
	if e := awserr.As(err); e == nil || e.Message != "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:fn:nosuchalias" {
		t.Errorf("missing alias: %v", err)
	}

	got := r.Policy("fn", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(got.Document()), &doc); err != nil {
		t.Fatal(err)
	}
	stmts := doc["Statement"].([]any)
	if len(stmts) != 2 || stmts[1].(map[string]any)["Principal"] != "*" || stmts[0].(map[string]any)["Principal"].(map[string]any)["Service"] != "s3.amazonaws.com" {
		t.Errorf("document %s", got.Document())
	}

	// Removing: a missing statement, a stale revision, then all of them.
	wantCode(t, r.RemovePermission(ctx, "fn", "", "nope", ""), awserr.CodeResourceNotFound)
	wantCode(t, r.RemovePermission(ctx, "fn", "", "s3", "stale"), awserr.CodePreconditionFailed)
	if err := r.RemovePermission(ctx, "fn", "", "s3", got.RevisionId); err != nil {
		t.Fatal(err)
	}
	if err := r.RemovePermission(ctx, "fn", "", "all", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetPolicy(ctx, "fn", ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("policy after removing everything: %v", err)
	}
	err = r.RemovePermission(ctx, "fn", "", "all", "")
	if e := awserr.As(err); e == nil || e.Message != "No policy is associated with the given resource." {
		t.Errorf("remove from no policy: %v", err)
	}
	err = r.RemovePermission(ctx, "nofn", "", "all", "")
	if e := awserr.As(err); e == nil || e.Message != "No policy found for: arn:aws:lambda:us-east-1:123456789012:function:nofn" {
		t.Errorf("remove from no function: %v", err)
	}
}

func TestAliasPolicyGoesWithTheAlias(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "fn")
	if _, err := r.PublishVersion(ctx, "fn", "", "", ""); err != nil {
		t.Fatal(err)
	}
	a, err := r.CreateAlias(ctx, "fn", Alias{Name: "live", FunctionVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddPermission(ctx, "fn", "live", statement("u", "lambda:InvokeFunctionUrl", Everyone), a.RevisionId); err != nil {
		t.Fatal(err)
	}
	after, _ := r.GetAlias(ctx, "fn", "live")
	if p := r.Policy("fn", "live"); p == nil || after.RevisionId != p.RevisionId || after.RevisionId == a.RevisionId {
		t.Errorf("alias revision %s → %s, policy %+v", a.RevisionId, after.RevisionId, p)
	}
	if err := r.DeleteAlias(ctx, "fn", "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "fn", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if p := r.Policy("fn", "live"); p != nil {
		t.Errorf("a new alias of the same name has the old one's policy: %+v", p)
	}
}
