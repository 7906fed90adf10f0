package env

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/runtimes"
)

// lambdaPath is PATH as Lambda sets it, without its last entry, the layers'
// bin directory (/opt/bin); the directory of the runtime's interpreter is
// appended when it lies elsewhere.
const lambdaPath = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin"

// lambdaLDPath is LD_LIBRARY_PATH as Lambda sets it, without its last entry, the
// layers' lib directory (/opt/lib).
const lambdaLDPath = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib"

// environ builds the runtime's environment: the user's variables, then the
// ones Lambda sets (which win), then the runtime's own. optRoot is where the
// function sees its layers (/opt, as Lambda's paths name it, unless an
// environment that is not isolated sees them elsewhere).
func environ(spec *Spec, taskRoot, runtimeRoot, optRoot, apiAddr string, cmd runtimes.Command) []string {
	env := make([]string, 0, len(spec.Environment)+24)
	for k, v := range spec.Environment {
		env = append(env, k+"="+v)
	}
	if runtimeRoot == "" {
		runtimeRoot = "/var/runtime" // as Lambda sets it, even where nothing is there
	}
	path := lambdaPath + ":" + optRoot + "/bin"
	if dir := filepath.Dir(cmd.Path); cmd.Path != "" && !strings.Contains(":"+path+":", ":"+dir+":") {
		path += ":" + dir
	}
	env = append(env,
		"_HANDLER="+spec.Handler,
		"LAMBDA_TASK_ROOT="+taskRoot,
		"LAMBDA_RUNTIME_DIR="+runtimeRoot,
		"AWS_LAMBDA_FUNCTION_NAME="+spec.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION="+spec.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(spec.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME="+spec.LogGroup,
		"AWS_LAMBDA_LOG_STREAM_NAME="+spec.LogStream,
		"AWS_REGION="+spec.Region,
		"AWS_DEFAULT_REGION="+spec.Region,
		"AWS_EXECUTION_ENV="+runtimes.ExecutionEnv(spec.Runtime),
		"AWS_LAMBDA_INITIALIZATION_TYPE="+spec.InitType,
		"AWS_LAMBDA_RUNTIME_API="+apiAddr,
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"PATH="+path,
		"LD_LIBRARY_PATH="+lambdaLDPath+":"+optRoot+"/lib",
	)
	// Managed Instances set it always, even to 1: runtimes pick their
	// multi-concurrent mode by its presence.
	if spec.MaxConcurrency > 1 || spec.InitType == InitManagedInstances {
		env = append(env, "AWS_LAMBDA_MAX_CONCURRENCY="+strconv.Itoa(max(1, spec.MaxConcurrency)))
	}
	// With the JSON log format Lambda tells the runtime the format and the
	// application log level; the user's own setting wins, as it does in
	// AWS's runtime interface emulator.
	if spec.Logging.Format == LogFormatJSON {
		if _, set := spec.Environment["AWS_LAMBDA_LOG_FORMAT"]; !set {
			env = append(env, "AWS_LAMBDA_LOG_FORMAT="+LogFormatJSON)
		}
		if _, set := spec.Environment["AWS_LAMBDA_LOG_LEVEL"]; !set {
			level := spec.Logging.ApplicationLevel
			if level == "" {
				level = "INFO"
			}
			env = append(env, "AWS_LAMBDA_LOG_LEVEL="+level)
		}
	}
	// Go reads its cgroup CPU quota but never goes below 2 procs; a function
	// with at most one vCPU runs best with GOMAXPROCS=1 (fewer idle
	// spinning threads on the invoke path). The user's setting wins.
	if _, set := spec.Environment["GOMAXPROCS"]; !set && runtimes.KindOf(spec.Runtime) == runtimes.Provided {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(1, int(math.Ceil(spec.CPUs-1e-9)))))
	}
	env = append(env, cmd.Env...)
	return env
}
