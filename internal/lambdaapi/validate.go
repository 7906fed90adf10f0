package lambdaapi

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// awsRuntimes is the enum Lambda prints when a runtime is unknown.
const awsRuntimes = "[nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2]"

// knownRuntimes are runtimes Lambda knows: those shoal runs, and those it does not.
var knownRuntimes = map[string]bool{
	"provided.al2023": true, "provided.al2": true, "provided": true,
	"nodejs16.x": true, "nodejs18.x": true, "nodejs20.x": true, "nodejs22.x": true, "nodejs24.x": true,
	"python3.8": true, "python3.9": true, "python3.10": true, "python3.11": true, "python3.12": true,
	"python3.13": true, "python3.14": true,
	"java8.al2": false, "java11": false, "java17": false, "java21": false, "java25": false,
	"ruby3.2": false, "ruby3.3": false, "ruby3.4": false,
	"dotnet6": false, "dotnet8": false, "dotnet10": false,
}

func validateRuntime(rt string) error {
	runs, known := knownRuntimes[rt]
	if !known {
		return awserr.InvalidParameter("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: %s or be a valid ARN", rt, awsRuntimes)
	}
	if !runs {
		return awserr.InvalidParameter("The runtime parameter of %s is not supported by shoal. Supported runtimes: provided.al2023, provided.al2, provided, nodejs*, python3.*.", rt)
	}
	return nil
}

// reservedEnv are the variables Lambda sets itself and refuses in Environment.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

func validateEnvironment(env *registry.Environment) error {
	if env == nil {
		return nil
	}
	var reserved []string
	for k := range env.Variables {
		if !validEnvKey(k) {
			return awserr.Validation("1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
		}
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		sort.Strings(reserved)
		return awserr.InvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ","))
	}
	b, _ := json.Marshal(env.Variables)
	if len(b) > 4096 {
		return awserr.InvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", b)
	}
	return nil
}

func validEnvKey(k string) bool {
	if len(k) < 1 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter || !(letter || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validateArchitectures(archs []string) error {
	if archs == nil {
		return nil
	}
	shown := "[" + strings.Join(archs, ", ") + "]"
	if len(archs) > 1 {
		return validationError(shown, "architectures", "Member must have length less than or equal to 1")
	}
	if len(archs) == 0 {
		return validationError(shown, "architectures", "Member must have length greater than or equal to 1")
	}
	if archs[0] != "x86_64" && archs[0] != "arm64" {
		return validationError(shown, "architectures", "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]")
	}
	return nil
}

// configRequest holds the settings CreateFunction and UpdateFunctionConfiguration
// share. Nil means "not given".
type configRequest struct {
	Role              *string                     `json:"Role"`
	Runtime           *string                     `json:"Runtime"`
	Handler           *string                     `json:"Handler"`
	Description       *string                     `json:"Description"`
	Timeout           *int                        `json:"Timeout"`
	MemorySize        *int                        `json:"MemorySize"`
	Environment       *registry.Environment       `json:"Environment"`
	VpcConfig         *registry.VpcConfig         `json:"VpcConfig"`
	DeadLetterConfig  *registry.DeadLetterConfig  `json:"DeadLetterConfig"`
	KMSKeyArn         *string                     `json:"KMSKeyArn"`
	TracingConfig     *registry.TracingConfig     `json:"TracingConfig"`
	Layers            []string                    `json:"Layers"`
	FileSystemConfigs []registry.FileSystemConfig `json:"FileSystemConfigs"`
	EphemeralStorage  *registry.EphemeralStorage  `json:"EphemeralStorage"`
	SnapStart         *registry.SnapStart         `json:"SnapStart"`
	LoggingConfig     *registry.LoggingConfig     `json:"LoggingConfig"`
	ImageConfig       json.RawMessage             `json:"ImageConfig"`
	// CapacityProviderConfig places the function on Lambda Managed Instances.
	CapacityProviderConfig *capacityProviderConfigRequest `json:"CapacityProviderConfig"`
}

// validate checks the given settings as Lambda does.
func (c *configRequest) validate() error {
	if c.Role != nil && !roleRE.MatchString(*c.Role) {
		return patternError(*c.Role, "role", rolePattern)
	}
	if c.Runtime != nil {
		if err := validateRuntime(*c.Runtime); err != nil {
			return err
		}
	}
	if c.Handler != nil {
		if len(*c.Handler) > 128 {
			return validationError(*c.Handler, "handler", "Member must have length less than or equal to 128")
		}
		if strings.ContainsAny(*c.Handler, " \t\r\n") {
			return patternError(*c.Handler, "handler", `[^\s]+`)
		}
	}
	if c.Description != nil && len(*c.Description) > 256 {
		return validationError(*c.Description, "description", "Member must have length less than or equal to 256")
	}
	if c.Timeout != nil {
		if *c.Timeout < 1 {
			return validationError(fmt.Sprint(*c.Timeout), "timeout", "Member must have value greater than or equal to 1")
		}
		if *c.Timeout > 900 {
			return awserr.InvalidParameter("1 validation error detected: Value '%d' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900", *c.Timeout)
		}
	}
	if c.MemorySize != nil {
		m := *c.MemorySize
		switch {
		case m < 128:
			return validationError(fmt.Sprint(m), "memorySize", "Member must have value greater than or equal to 128")
		case m > 32768:
			return validationError(fmt.Sprint(m), "memorySize", "Member must have value less than or equal to 32768")
		}
		// Above 10240 MB is for Managed Instances functions only: finishCompute checks
		// it once the request is applied (an update need not repeat the config).
	}
	if err := validateEnvironment(c.Environment); err != nil {
		return err
	}
	if c.EphemeralStorage != nil && (c.EphemeralStorage.Size < 512 || c.EphemeralStorage.Size > 10240) {
		return validationError(fmt.Sprint(c.EphemeralStorage.Size), "ephemeralStorage.size", "Member must have value between 512 and 10240")
	}
	if c.TracingConfig != nil && c.TracingConfig.Mode != "" && c.TracingConfig.Mode != "Active" && c.TracingConfig.Mode != "PassThrough" {
		return validationError(c.TracingConfig.Mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
	}
	if err := validateLogging(c.LoggingConfig); err != nil {
		return err
	}
	if len(c.ImageConfig) > 0 && string(c.ImageConfig) != "null" {
		return awserr.InvalidParameter("ImageConfig is not supported for Zip functions; shoal runs Zip packages only.")
	}
	if c.CapacityProviderConfig != nil {
		if err := c.CapacityProviderConfig.validate(); err != nil {
			return err
		}
	}
	return nil
}

// apply copies the given settings onto v.
func (c *configRequest) apply(v *registry.Version) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&v.Role, c.Role)
	set(&v.Runtime, c.Runtime)
	set(&v.Handler, c.Handler)
	set(&v.Description, c.Description)
	set(&v.KMSKeyArn, c.KMSKeyArn)
	if c.Timeout != nil {
		v.Timeout = *c.Timeout
	}
	if c.MemorySize != nil {
		v.MemorySize = *c.MemorySize
	}
	if c.Environment != nil {
		env := &registry.Environment{Variables: c.Environment.Variables}
		if env.Variables == nil {
			env.Variables = map[string]string{}
		}
		v.Environment = env
	}
	if c.VpcConfig != nil {
		vpc := *c.VpcConfig
		if vpc.SubnetIds == nil {
			vpc.SubnetIds = []string{}
		}
		if vpc.SecurityGroupIds == nil {
			vpc.SecurityGroupIds = []string{}
		}
		v.VpcConfig = &vpc
	}
	if c.DeadLetterConfig != nil {
		v.DeadLetterConfig = c.DeadLetterConfig
	}
	if c.TracingConfig != nil {
		v.TracingConfig = c.TracingConfig
	}
	if c.Layers != nil {
		v.Layers = nil
		for _, arn := range c.Layers {
			v.Layers = append(v.Layers, registry.Layer{Arn: arn})
		}
	}
	if c.FileSystemConfigs != nil {
		v.FileSystemConfigs = c.FileSystemConfigs
	}
	if c.EphemeralStorage != nil {
		v.EphemeralStorage = c.EphemeralStorage
	}
	if c.SnapStart != nil {
		s := *c.SnapStart
		if s.ApplyOn == "" {
			s.ApplyOn = "None"
		}
		s.OptimizationStatus = "Off"
		v.SnapStart = &s
	}
	if c.CapacityProviderConfig != nil {
		c.CapacityProviderConfig.apply(v)
	}
	// LoggingConfig is merged by finishLogging, once CapacityProviderConfig is in place.
}

// codeRequest is the code of CreateFunction (Code) and UpdateFunctionCode.
type codeRequest struct {
	ZipFile         []byte  `json:"ZipFile"`
	S3Bucket        *string `json:"S3Bucket"`
	S3Key           *string `json:"S3Key"`
	S3ObjectVersion *string `json:"S3ObjectVersion"`
	ImageUri        *string `json:"ImageUri"`
}

// validateZip checks a package as Lambda does on upload: its size, that it is a
// readable zip, and the total size of its contents. Unpacking is not done here.
func (a *api) validateZip(c *codeRequest) error {
	if c.ImageUri != nil {
		return awserr.InvalidParameter("Container images (ImageUri) are not supported by shoal; upload a Zip package with ZipFile.")
	}
	if c.S3Bucket != nil || c.S3Key != nil {
		return awserr.InvalidParameter("Code from S3 (S3Bucket, S3Key) is not supported by shoal yet; upload the package with ZipFile.")
	}
	if len(c.ZipFile) == 0 {
		return awserr.InvalidParameter("Please provide a source for function code.")
	}
	if int64(len(c.ZipFile)) > a.cfg.MaxZippedCodeBytes {
		return requestEntityTooLarge("Zipped size must be smaller than %d bytes", a.cfg.MaxZippedCodeBytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(c.ZipFile), int64(len(c.ZipFile)))
	if err != nil {
		return awserr.InvalidParameter("Could not unzip uploaded file. Please check your file, then try to upload again.")
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total >= uint64(a.cfg.MaxUnzippedCodeBytes) {
			return awserr.InvalidParameter("Unzipped size must be smaller than %d bytes", a.cfg.MaxUnzippedCodeBytes)
		}
	}
	return nil
}
