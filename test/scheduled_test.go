package test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/awscli"
)

// awsCLIManaged is the aws CLI v1, which knows the 2025-11-30 Managed
// Instances commands (internal/awscli).
func awsCLIManaged(t *testing.T) string {
	t.Helper()
	cli := awscli.V1(t)
	if !cli.Knows("put-function-scaling-config") {
		t.Skipf("the aws CLI v1 at %s (%s) has no put-function-scaling-config", cli.Path, cli.Version)
	}
	return cli.Path
}

// cronJob is one line of a crontab: its schedule and command.
type cronJob struct{ schedule, command string }

// readCrontab reads the environment assignments and the jobs of a crontab file.
func readCrontab(t *testing.T, path string) (env []string, jobs []cronJob) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if k, _, ok := strings.Cut(fields[0], "="); ok && len(fields) == 1 && !strings.ContainsAny(k, "*/") {
			env = append(env, line)
			continue
		}
		if len(fields) < 6 {
			t.Fatalf("crontab line %q: want five time fields and a command", line)
		}
		jobs = append(jobs, cronJob{strings.Join(fields[:5], " "), strings.Join(fields[5:], " ")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env, jobs
}

// The scheduled scaling example of docs/scheduled-scaling.md runs: each line of its
// crontab, run as cron runs it (sh -c, the crontab's variables), sets the function
// scaling config with the aws CLI and returns once shoal has applied it.
func TestScheduledScaling(t *testing.T) {
	cli := awsCLIManaged(t)
	dir := filepath.Join(moduleRoot, "docs", "examples", "scheduled-scaling")
	cronEnv, jobs := readCrontab(t, filepath.Join(dir, "crontab"))
	if len(jobs) != 2 {
		t.Fatalf("the example's crontab has %d jobs, want the morning and the evening one", len(jobs))
	}
	s := managedShoal(t)
	cpArn := createCapacityProvider(t, s, "cp-sched")
	createManagedFn(t, s, "orders", cpArn, 4)
	if _, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("orders"),
		PublishTo: types.FunctionVersionLatestPublishedLatestPublished}); err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, s, "orders", "$LATEST.PUBLISHED", types.StateActive)

	for _, job := range jobs {
		command := strings.Replace(job.command, "/usr/local/bin/shoal-scale", filepath.Join(dir, "scale.sh"), 1)
		cmd := exec.Command("/bin/sh", "-c", command)
		// Signed with the key of shoal's credentials file, as a user who
		// exported AWS_SHARED_CREDENTIALS_FILE in the crontab would.
		cmd.Env = append(awscli.Environ(cronEnv...),
			"SHOAL_ENDPOINT_URL="+s.endpoint, "AWS_CLI="+cli, "POLL=1", "WAIT=240",
			"AWS_SHARED_CREDENTIALS_FILE="+s.keys.file)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("%s  %s (%v):\n%s", job.schedule, command, time.Since(start).Round(time.Second), out)
		if err != nil {
			t.Fatalf("the job failed: %v", err)
		}
		var min, max int32
		fields := strings.Fields(command)
		if _, err := fmt.Sscan(fields[len(fields)-2]+" "+fields[len(fields)-1], &min, &max); err != nil {
			t.Fatalf("job %q: %v", command, err)
		}
		got, err := s.client.GetFunctionScalingConfig(ctx(t), &lambda.GetFunctionScalingConfigInput{FunctionName: aws.String("orders"),
			Qualifier: aws.String("$LATEST.PUBLISHED")})
		if err != nil {
			t.Fatal(err)
		}
		a := got.AppliedFunctionScalingConfig
		if a == nil || aws.ToInt32(a.MinExecutionEnvironments) != min || aws.ToInt32(a.MaxExecutionEnvironments) != max {
			t.Fatalf("applied %+v, want %d..%d", a, min, max)
		}
		if envs, zones, _ := readyEnvs(getFleet(t, s), "orders", "$LATEST.PUBLISHED"); envs < int(min) || len(zones) < 3 {
			t.Errorf("%d ready environments in zones %v, want at least %d over 3 zones", envs, zones, min)
		}
	}
}
