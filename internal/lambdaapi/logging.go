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

// validateLogging checks the enums of a LoggingConfig, as Lambda's request
// validation does (ValidationException).
func validateLogging(lc *registry.LoggingConfig) error {
	if lc == nil {
		return nil
	}
	if lc.LogFormat != "" && lc.LogFormat != logFormatJSON && lc.LogFormat != logFormatText {
		return validationError(lc.LogFormat, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]")
	}
	if lc.ApplicationLogLevel != "" && !member(applicationLogLevels, lc.ApplicationLogLevel) {
		return validationError(lc.ApplicationLogLevel, "loggingConfig.applicationLogLevel", "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]")
	}
	if lc.SystemLogLevel != "" && !member(systemLogLevels, lc.SystemLogLevel) {
		return validationError(lc.SystemLogLevel, "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")
	}
	return nil
}

func member(set []string, s string) bool {
	for _, m := range set {
		if m == s {
			return true
		}
	}
	return false
}

// finishLogging merges the request's LoggingConfig (req, nil when not given)
// into v's, once the rest of the request is applied (so that v knows whether it
// is a Managed Instances function):
//   - what the request leaves out keeps its value (LogGroup, the format);
//   - levels on a Text function are refused, as Lambda refuses them;
//   - a request that names JSON, or switches to it, gets INFO for the levels it
//     leaves out; switching to Text drops both levels;
//   - a Managed Instances function is JSON: an explicit Text is refused, and a
//     configuration that is Text only by default becomes JSON.
func finishLogging(v *registry.Version, req *registry.LoggingConfig) error {
	var cur registry.LoggingConfig
	if v.LoggingConfig != nil {
		cur = *v.LoggingConfig
	}
	if cur.LogFormat == "" {
		cur.LogFormat = logFormatText
	}
	managed := v.ManagedInstances() != nil
	if req == nil {
		if managed && cur.LogFormat != logFormatJSON {
			cur.LogFormat = logFormatJSON
			cur.ApplicationLogLevel, cur.SystemLogLevel = defaultLevel, defaultLevel
			v.LoggingConfig = &cur
		}
		return nil
	}
	format := cur.LogFormat
	if req.LogFormat != "" {
		format = req.LogFormat
	}
	if format == logFormatText && managed {
		if req.LogFormat == logFormatText {
			return awserr.InvalidParameter("%s", managedText)
		}
		format = logFormatJSON
	}
	if format == logFormatText && (req.ApplicationLogLevel != "" || req.SystemLogLevel != "") {
		return awserr.InvalidParameter("%s", textWithLevels)
	}
	out := cur
	out.LogFormat = format
	if req.LogGroup != "" {
		out.LogGroup = req.LogGroup
	}
	switch {
	case format == logFormatText:
		out.ApplicationLogLevel, out.SystemLogLevel = "", ""
	case req.LogFormat == logFormatJSON || cur.LogFormat != logFormatJSON:
		out.ApplicationLogLevel = or(req.ApplicationLogLevel, defaultLevel)
		out.SystemLogLevel = or(req.SystemLogLevel, defaultLevel)
	default: // already JSON, format not named: merge the levels given
		out.ApplicationLogLevel = or(req.ApplicationLogLevel, or(cur.ApplicationLogLevel, defaultLevel))
		out.SystemLogLevel = or(req.SystemLogLevel, or(cur.SystemLogLevel, defaultLevel))
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
