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
	"provided.al2023": true, "provided.al2": true,
	"nodejs16.x": true, "nodejs18.x": true, "nodejs20.x": true, "nodejs22.x": true, "nodejs24.x": true,
	"python3.8": true, "python3.9": true, "python3.10": true, "python3.11": true, "python3.12": true,
	"python3.13": true, "python3.14": true,
	"java8.al2": false, "java11": false, "java17": false, "java21": false, "java25": false,
	"ruby3.2": false, "ruby3.3": false, "ruby3.4": false,
	"dotnet6": false, "dotnet8": false, "dotnet10": false,
}

// deprecatedRuntimes are the runtimes of Lambda's model that it no longer lets
// functions be created or updated on.
var deprecatedRuntimes = map[string]bool{
	"nodejs": true, "nodejs4.3": true, "nodejs4.3-edge": true, "nodejs6.10": true, "nodejs8.10": true,
	"nodejs10.x": true, "nodejs12.x": true, "nodejs14.x": true,
	"python2.7": true, "python3.6": true, "python3.7": true,
	"java8": true, "go1.x": true, "provided": true, "ruby2.5": true, "ruby2.7": true,
	"dotnetcore1.0": true, "dotnetcore2.0": true, "dotnetcore2.1": true, "dotnetcore3.1": true,
}

func validateRuntime(rt string) error {
	if deprecatedRuntimes[rt] {
		return awserr.InvalidParameter("The runtime parameter of %s is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.", rt)
	}
	runs, known := knownRuntimes[rt]
	if !known {
		return awserr.InvalidParameter("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: %s or be a valid ARN", rt, awsRuntimes)
	}
	if !runs {
		return awserr.InvalidParameter("The runtime parameter of %s is not supported by shoal. Supported runtimes: provided.al2023, provided.al2, nodejs*, python3.*.", rt)
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

// environmentRequest is an Environment as the request sends it.
type environmentRequest struct {
	Variables orderedVars `json:"Variables"`
}

// orderedVars are environment variables with the order the request gave them in:
// Lambda measures the 4 KB limit on them as sent, and quotes them so.
type orderedVars struct {
	keys []string
	m    map[string]string
}

func (o *orderedVars) UnmarshalJSON(b []byte) error {
	o.keys, o.m = nil, map[string]string{}
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("environment variables: want an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		var val string
		if err := dec.Decode(&val); err != nil {
			return err
		}
		if _, dup := o.m[k]; !dup {
			o.keys = append(o.keys, k)
		}
		o.m[k] = val
	}
	_, err := dec.Token()
	return err
}

// measured is the variables as Lambda measures and quotes them: compact JSON in
// the request's order.
func (o *orderedVars) measured() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var out bytes.Buffer
	out.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			out.WriteByte(',')
		}
		buf.Reset()
		_ = enc.Encode(k)
		out.Write(bytes.TrimSpace(buf.Bytes()))
		out.WriteByte(':')
		buf.Reset()
		_ = enc.Encode(o.m[k])
		out.Write(bytes.TrimSpace(buf.Bytes()))
	}
	out.WriteByte('}')
	return out.String()
}

// maxEnvironmentBytes is Lambda's limit on the environment variables, measured as
// compact JSON.
const maxEnvironmentBytes = 4096

func validateEnvironment(env *environmentRequest) error {
	if env == nil {
		return nil
	}
	var reserved []string
	for _, k := range env.Variables.keys {
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		sort.Strings(reserved)
		return awserr.InvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ","))
	}
	if m := env.Variables.measured(); len(m) > maxEnvironmentBytes {
		return awserr.InvalidParameter("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", m)
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
	var v violations
	checkArchitectures(archs, &v)
	if err := v.err(); err != nil {
		return err
	}
	return nil
}

// checkArchitectures records the constraints an Architectures list fails.
func checkArchitectures(archs []string, v *violations) {
	if archs == nil {
		return
	}
	shown := "[" + strings.Join(archs, ", ") + "]"
	switch {
	case len(archs) > 1:
		v.add(shown, "architectures", "Member must have length less than or equal to 1")
	case len(archs) == 0:
		v.add(shown, "architectures", "Member must have length greater than or equal to 1")
	case archs[0] != "x86_64" && archs[0] != "arm64":
		v.add(shown, "architectures", "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]")
	}
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
	Environment       *environmentRequest         `json:"Environment"`
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

// validate checks the given settings as Lambda does: first every constraint of the
// request's shape (one ValidationException listing each failure, with those v
// already holds), then the service's own rules.
func (c *configRequest) validate(v violations) error {
	c.syntax(&v)
	if err := v.err(); err != nil {
		return err
	}
	return c.semantics()
}

// syntax records the constraints of the request's shape that the settings fail.
func (c *configRequest) syntax(v *violations) {
	if c.Role != nil && !roleRE.MatchString(*c.Role) {
		v.add(*c.Role, "role", "Member must satisfy regular expression pattern: "+rolePattern)
	}
	if c.Handler != nil {
		if len(*c.Handler) > 128 {
			v.add(*c.Handler, "handler", "Member must have length less than or equal to 128")
		}
		if strings.ContainsAny(*c.Handler, " \t\r\n") {
			v.add(*c.Handler, "handler", `Member must satisfy regular expression pattern: [^\s]+`)
		}
	}
	if c.Description != nil && len(*c.Description) > 256 {
		v.add(*c.Description, "description", "Member must have length less than or equal to 256")
	}
	if c.Timeout != nil && *c.Timeout < 1 {
		v.add(fmt.Sprint(*c.Timeout), "timeout", "Member must have value greater than or equal to 1")
	}
	if c.MemorySize != nil {
		// Above 10240 MB is for Managed Instances functions only: finishCompute checks
		// it once the request is applied (an update need not repeat the config).
		switch m := *c.MemorySize; {
		case m < 128:
			v.add(fmt.Sprint(m), "memorySize", "Member must have value greater than or equal to 128")
		case m > 32768:
			v.add(fmt.Sprint(m), "memorySize", "Member must have value less than or equal to 32768")
		}
	}
	if c.Environment != nil {
		for _, k := range c.Environment.Variables.keys {
			if !validEnvKey(k) {
				v.addRaw("Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]")
				break
			}
		}
	}
	if c.EphemeralStorage != nil && (c.EphemeralStorage.Size < 512 || c.EphemeralStorage.Size > 10240) {
		v.add(fmt.Sprint(c.EphemeralStorage.Size), "ephemeralStorage.size", "Member must have value between 512 and 10240")
	}
	if c.TracingConfig != nil && c.TracingConfig.Mode != "" && c.TracingConfig.Mode != "Active" && c.TracingConfig.Mode != "PassThrough" {
		v.add(c.TracingConfig.Mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
	}
	checkSnapStart(c.SnapStart, v)
	checkLogging(c.LoggingConfig, v)
	checkLayers(c.Layers, v)
}

// semantics checks the service's rules on the given settings.
func (c *configRequest) semantics() error {
	if c.Runtime != nil {
		if err := validateRuntime(*c.Runtime); err != nil {
			return err
		}
	}
	if c.Timeout != nil && *c.Timeout > 900 {
		return awserr.InvalidParameter("1 validation error detected: Value '%d' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900", *c.Timeout)
	}
	if err := validateEnvironment(c.Environment); err != nil {
		return err
	}
	if err := validateLayers(c.Layers); err != nil {
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
		env := &registry.Environment{Variables: c.Environment.Variables.m}
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
			s.ApplyOn = registry.SnapStartNone
		}
		s.OptimizationStatus = registry.SnapStartOff
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

// snapStartRuntimes are the runtimes Lambda offers SnapStart on.
var snapStartRuntimes = map[string]bool{
	"java11": true, "java17": true, "java21": true, "java25": true,
	"python3.12": true, "python3.13": true, "python3.14": true,
	"dotnet8": true, "dotnet10": true,
}

// checkSnapStart records an ApplyOn outside its enum.
func checkSnapStart(s *registry.SnapStart, v *violations) {
	if s != nil && s.ApplyOn != "" && s.ApplyOn != registry.SnapStartPublishedVersions && s.ApplyOn != registry.SnapStartNone {
		v.add(s.ApplyOn, "snapStart.applyOn", "Member must satisfy enum value set: [PublishedVersions, None]")
	}
}

// finishSnapStart refuses SnapStart on a runtime Lambda does not offer it on, once
// the request is applied (an update may change either). shoal records the setting
// and shows it as Lambda does; it takes no snapshots.
func finishSnapStart(v *registry.Version) error {
	if v.SnapStart != nil && v.SnapStart.ApplyOn == registry.SnapStartPublishedVersions && !snapStartRuntimes[v.Runtime] {
		return awserr.InvalidParameter("%s is not supported for SnapStart enabled functions.", v.Runtime)
	}
	return nil
}
