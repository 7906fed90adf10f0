package registry

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
)

func createCP(t *testing.T, r *Registry, name string) *CapacityProvider {
	t.Helper()
	cp, err := r.CreateCapacityProvider(context.Background(), CreateCapacityProviderInput{Name: name, Provider: CapacityProvider{
		VpcConfig:         &CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{}},
		PermissionsConfig: &CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: "arn:aws:iam::123456789012:role/op"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func createManaged(t *testing.T, r *Registry, name, cp, publishTo string) (*Version, *Version) {
	t.Helper()
	latest, pub, err := r.CreateFunction(context.Background(), CreateFunctionInput{
		Config: Version{FunctionName: name, Runtime: "python3.13", Handler: "app.handler", Role: "arn:aws:iam::123456789012:role/r",
			MemorySize: 4096, CapacityProviderConfig: &CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &ManagedInstancesConfig{
				CapacityProviderArn: r.CapacityProviderARN(cp), PerExecutionEnvironmentMaxConcurrency: 20, ExecutionEnvironmentMemoryGiBPerVCpu: 2}}},
		ZipFile:   testZip(t, name),
		PublishTo: publishTo,
	})
	if err != nil {
		t.Fatal(err)
	}
	return latest, pub
}

func TestWatchCapacityProviders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRegistry(t)
	createCP(t, r, "before")
	ch, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() Change {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change delivered")
			return Change{}
		}
	}
	if c := next(); c != (Change{CapacityProvider: "before"}) {
		t.Fatalf("initial change = %+v", c)
	}
	// A function and a capacity provider of the same name are separate changes.
	createCP(t, r, "x")
	create(t, r, "x")
	got := map[Change]bool{next(): true, next(): true}
	if !got[Change{CapacityProvider: "x"}] || !got[Change{Function: "x"}] {
		t.Fatalf("changes = %v", got)
	}
	// State reports do not wake watchers; updates and deletes do.
	if err := r.SetCapacityProviderState(ctx, "x", CapacityProviderActive, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateCapacityProvider(ctx, "x", CapacityProviderUpdate{PropagateTags: &PropagateTags{Mode: "None"}}); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (Change{CapacityProvider: "x"}) {
		t.Fatalf("change = %+v", c)
	}
	if _, err := r.DeleteCapacityProvider(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (Change{CapacityProvider: "x", Deleted: true}) {
		t.Fatalf("change = %+v", c)
	}
	cancel()
	for range ch {
	}
}

// A state reported for a deleted capacity provider does not apply to a new one of the
// same name, and a state reported for a version does not survive its republishing.
func TestReportsApplyToOneGeneration(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	createCP(t, r, "cp")
	if err := r.SetCapacityProviderState(ctx, "cp", CapacityProviderFailed, "no capacity"); err != nil {
		t.Fatal(err)
	}
	if cp, _ := r.GetCapacityProvider(ctx, "cp"); cp.State != CapacityProviderFailed {
		t.Fatalf("state %s", cp.State)
	}
	if _, err := r.DeleteCapacityProvider(ctx, "cp"); err != nil {
		t.Fatal(err)
	}
	if cp := createCP(t, r, "cp"); cp.State != CapacityProviderPending {
		t.Fatalf("recreated state %s", cp.State)
	}

	_, pub := createManaged(t, r, "f", "cp", PublishToLatestPublished)
	if err := r.SetVersionState(ctx, "f", LatestPublished, StateActive, ""); err != nil {
		t.Fatal(err)
	}
	if v, err := r.ResolveInvocation(ctx, "f", ""); err != nil || v.RevisionId != pub.RevisionId {
		t.Fatalf("resolve = %v, %v", v, err)
	}
	if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Timeout = 9; return nil }); err != nil {
		t.Fatal(err)
	}
	again, err := r.PublishVersionTo(ctx, "f", PublishToLatestPublished, "", "", "")
	if err != nil || again.RevisionId == pub.RevisionId {
		t.Fatalf("republish = %v, %v", again, err)
	}
	if state, _, _ := r.VersionState(again); state != StatePending {
		t.Fatalf("republished version is %s; want Pending", state)
	}
	// Until the new revision is reported Active, the one that was serves.
	if v, err := r.ResolveInvocation(ctx, "f", ""); err != nil || v.RevisionId != pub.RevisionId {
		t.Fatalf("resolve during the republish = %v, %v", v, err)
	}
	if err := r.SetVersionState(ctx, "f", LatestPublished, "Sleeping", ""); !awserr.Is(err, awserr.CodeInvalidParameterValue) {
		t.Fatalf("unknown state accepted: %v", err)
	}
	if err := r.SetVersionState(ctx, "f", "9", StateActive, ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("missing version accepted: %v", err)
	}
}

func TestListManagedVersions(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	createCP(t, r, "cp")
	create(t, r, "ondemand")
	if _, err := r.PublishVersion(ctx, "ondemand", "", "", ""); err != nil {
		t.Fatal(err)
	}
	createManaged(t, r, "mi", "cp", PublishToLatestPublished)
	if _, err := r.PublishVersion(ctx, "mi", "", "", ""); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if _, err := r.PutFunctionScalingConfig(ctx, "mi", "1", ScalingConfig{MinExecutionEnvironments: &zero, MaxExecutionEnvironments: &zero}); err != nil {
		t.Fatal(err)
	}
	mvs, err := r.ListManagedVersions(ctx)
	if err != nil || len(mvs) != 2 {
		t.Fatalf("managed versions %+v, %v", mvs, err)
	}
	for i, want := range []struct {
		version         string
		lo, hi          int
		state           string
		conc, vcpu, mem int
	}{
		{LatestPublished, 3, MaxExecutionEnvironmentsLimit, StatePending, 20, 2, 4096},
		{"1", 0, 0, StateDeactivating, 20, 2, 4096},
	} {
		m := mvs[i]
		if m.Version.Version != want.version || m.MinEnvironments != want.lo || m.MaxEnvironments != want.hi || m.State != want.state ||
			m.MaxConcurrency != want.conc || m.VCPUs != want.vcpu || m.MemoryMB != want.mem || m.CapacityProvider != "cp" {
			t.Errorf("managed version %d = %+v", i, m)
		}
	}
	// Deleting the version drops its scaling config and status.
	if err := r.DeleteVersion(ctx, "mi", "1"); err != nil {
		t.Fatal(err)
	}
	if mvs, _ := r.ListManagedVersions(ctx); len(mvs) != 1 {
		t.Fatalf("after delete: %+v", mvs)
	}
	if _, _, err := r.GetFunctionScalingConfig(ctx, "mi", "1"); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("scaling config of a deleted version: %v", err)
	}
}

// Functions created while their capacity provider is being deleted either exist with
// the capacity provider still there, or were refused: none points at a deleted one.
func TestDeleteCapacityProviderRacesCreateFunction(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	for round := range 5 {
		cp := "cp" + itoa(round)
		createCP(t, r, cp)
		errs := make(chan error, 9)
		for i := range 8 {
			go func() {
				_, _, err := r.CreateFunction(ctx, CreateFunctionInput{
					Config: Version{FunctionName: cp + "-f" + itoa(i), Runtime: "python3.13", Handler: "h", Role: "arn:aws:iam::123456789012:role/r",
						MemorySize: 2048, CapacityProviderConfig: &CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &ManagedInstancesConfig{
							CapacityProviderArn: r.CapacityProviderARN(cp)}}},
					ZipFile: testZip(t, "x"),
				})
				errs <- err
			}()
		}
		go func() {
			_, err := r.DeleteCapacityProvider(ctx, cp)
			errs <- err
		}()
		for range 9 {
			if err := <-errs; err != nil && !awserr.Is(err, awserr.CodeInvalidParameterValue) && !awserr.Is(err, awserr.CodeResourceConflict) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		users := r.versionsOn(cp, true)
		if _, err := r.GetCapacityProvider(ctx, cp); err != nil && len(users) > 0 {
			t.Fatalf("round %d: capacity provider deleted while %d functions use it", round, len(users))
		}
	}
}
