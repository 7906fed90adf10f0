package lambdaapi

import (
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// LoggingConfig: Lambda's advanced logging controls. The format is Text or JSON;
// with JSON a function has an application and a system log level (INFO unless
// given), with Text it has neither. Managed Instances functions are always JSON.
// docs/decisions/log-format.md records the choices made here.

const (
	logFormatJSON = "JSON"
	logFormatText = "Text"
	defaultLevel  = "INFO"
)

// applicationLogLevels and systemLogLevels are Lambda's enums, in its order.
var (
	applicationLogLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	systemLogLevels      = []string{"DEBUG", "INFO", "WARN"}
)

// textWithLevels is what Lambda answers to log levels on a Text function.
const textWithLevels = `LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change the LogFormat to "JSON" and try again.`

// managedText refuses Text for a Managed Instances function (shoal's wording).
const managedText = `Functions that use a capacity provider (Lambda Managed Instances) always use the JSON log format. Remove LogFormat from your request or set it to "JSON" and try again.`

// checkLogging records the enums of a LoggingConfig that fail, as Lambda's request
// validation does (ValidationException).
func checkLogging(lc *registry.LoggingConfig, v *violations) {
	if lc == nil {
		return
	}
	if lc.LogFormat != "" && lc.LogFormat != logFormatJSON && lc.LogFormat != logFormatText {
		v.add(lc.LogFormat, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]")
	}
	if lc.ApplicationLogLevel != "" && !member(applicationLogLevels, lc.ApplicationLogLevel) {
		v.add(lc.ApplicationLogLevel, "loggingConfig.applicationLogLevel", "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]")
	}
	if lc.SystemLogLevel != "" && !member(systemLogLevels, lc.SystemLogLevel) {
		v.add(lc.SystemLogLevel, "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")
	}
}

func member(set []string, s string) bool {
	for _, m := range set {
		if m == s {
			return true
		}
	}
	return false
}

// finishLogging applies the request's LoggingConfig (req, nil when not given)
// to v, once the rest of the request is applied (so that v knows whether it is
// a Managed Instances function). As Lambda does, a LoggingConfig in a request
// replaces the function's whole: what it leaves out takes its default (Text,
// or JSON on Managed Instances; the function's own log group; INFO levels with
// JSON), so a level given without LogFormat on a JSON function is refused as
// levels on Text are. Without one, v keeps its configuration, except that a
// Managed Instances function is JSON.
func finishLogging(v *registry.Version, req *registry.LoggingConfig) error {
	managed := v.ManagedInstances() != nil
	if req == nil {
		if managed && (v.LoggingConfig == nil || v.LoggingConfig.LogFormat != logFormatJSON) {
			out := registry.LoggingConfig{LogFormat: logFormatJSON, ApplicationLogLevel: defaultLevel, SystemLogLevel: defaultLevel}
			if v.LoggingConfig != nil {
				out.LogGroup = v.LoggingConfig.LogGroup
			}
			v.LoggingConfig = &out
		}
		return nil
	}
	format := req.LogFormat
	switch {
	case managed && format == logFormatText:
		return awserr.InvalidParameter("%s", managedText)
	case format == "" && managed:
		format = logFormatJSON
	case format == "":
		format = logFormatText
	}
	if format == logFormatText && (req.ApplicationLogLevel != "" || req.SystemLogLevel != "") {
		return awserr.InvalidParameter("%s", textWithLevels)
	}
	out := registry.LoggingConfig{LogFormat: format, LogGroup: req.LogGroup} // an empty group is filled in with the default
	if format == logFormatJSON {
		out.ApplicationLogLevel = or(req.ApplicationLogLevel, defaultLevel)
		out.SystemLogLevel = or(req.SystemLogLevel, defaultLevel)
	}
	v.LoggingConfig = &out
	return nil
}

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
