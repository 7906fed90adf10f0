// Package awserr is shoal's catalogue of Lambda API errors: each error type with its
// HTTP status, the name sent in X-Amzn-ErrorType and the body AWS sends. Components
// return these errors; the REST layer alone turns them into responses, so no handler
// writes a status code by hand.
package awserr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a Lambda API error.
type Error struct {
	Code    string // X-Amzn-ErrorType, e.g. ResourceNotFoundException
	Status  int    // HTTP status
	Message string
	// Type is "User" or "Service", as in Lambda's error bodies ("User" when empty).
	Type string
	// Untyped marks the errors Lambda sends without a Type in the body.
	Untyped bool
	// Reason is set on throttles (TooManyRequestsException) and some conflicts.
	Reason string
	// RetryAfterSeconds is sent as Retry-After on throttles when non-zero.
	RetryAfterSeconds int
	// Err is the cause, if any; it is not sent to the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err carries a Lambda error with the given code.
func Is(err error, code string) bool {
	e := As(err)
	return e != nil && e.Code == code
}

func newErr(code string, status int, typ, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// The catalogue. Status codes and names follow the Lambda API reference.
const (
	CodeResourceNotFound               = "ResourceNotFoundException"
	CodeResourceConflict               = "ResourceConflictException"
	CodeResourceInUse                  = "ResourceInUseException"
	CodeInvalidParameterValue          = "InvalidParameterValueException"
	CodeValidation                     = "ValidationException"
	CodeInvalidRequestContent          = "InvalidRequestContentException"
	CodeRequestTooLarge                = "RequestTooLargeException"
	CodeTooManyRequests                = "TooManyRequestsException"
	CodePreconditionFailed             = "PreconditionFailedException"
	CodeService                        = "ServiceException"
	CodeInvalidZipFile                 = "InvalidZipFileException"
	CodeCodeStorageExceeded            = "CodeStorageExceededException"
	CodeResourceNotReady               = "ResourceNotReadyException"
	CodeProvisionedConcurrencyNotFound = "ProvisionedConcurrencyConfigNotFoundException"
	CodeUnsupportedMediaType           = "UnsupportedMediaTypeException"
	CodeInvalidRuntime                 = "InvalidRuntimeException"
	CodeUnknownOperation               = "UnknownOperationException"
	CodeAccessDenied                   = "AccessDeniedException"
	CodeNoPublishedVersion             = "NoPublishedVersionException"
	CodeCapacityProviderLimitExceeded  = "CapacityProviderLimitExceededException"
)

// Authentication errors, answered by Lambda's front end before an operation runs.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
)

// Throttle reasons sent in the Reason field of TooManyRequestsException.
const (
	ReasonConcurrentInvocationLimitExceeded                 = "ConcurrentInvocationLimitExceeded"
	ReasonReservedFunctionConcurrentInvocationLimitExceeded = "ReservedFunctionConcurrentInvocationLimitExceeded"
	ReasonCallerRateLimitExceeded                           = "CallerRateLimitExceeded"
	ReasonFunctionInvocationRateLimitExceeded               = "FunctionInvocationRateLimitExceeded"
	ReasonConcurrentSnapshotCreateLimitExceeded             = "ConcurrentSnapshotCreateLimitExceeded"
)

func NotFound(format string, args ...any) *Error {
	return newErr(CodeResourceNotFound, http.StatusNotFound, "User", format, args...)
}

func Conflict(format string, args ...any) *Error {
	return newErr(CodeResourceConflict, http.StatusConflict, "User", format, args...)
}

func InvalidParameter(format string, args ...any) *Error {
	return newErr(CodeInvalidParameterValue, http.StatusBadRequest, "User", format, args...)
}

// InvalidParameterUntyped is InvalidParameter as Lambda sends some of them: without
// a Type (the concurrency limits, for one).
func InvalidParameterUntyped(format string, args ...any) *Error {
	e := InvalidParameter(format, args...)
	e.Untyped = true
	return e
}

func Validation(format string, args ...any) *Error {
	return newErr(CodeValidation, http.StatusBadRequest, "User", format, args...)
}

func InvalidRequestContent(format string, args ...any) *Error {
	return newErr(CodeInvalidRequestContent, http.StatusBadRequest, "User", format, args...)
}

func RequestTooLarge(format string, args ...any) *Error {
	return newErr(CodeRequestTooLarge, http.StatusRequestEntityTooLarge, "User", format, args...)
}

func PreconditionFailed(format string, args ...any) *Error {
	return newErr(CodePreconditionFailed, http.StatusPreconditionFailed, "User", format, args...)
}

func InvalidZipFile(format string, args ...any) *Error {
	return newErr(CodeInvalidZipFile, http.StatusBadRequest, "User", format, args...)
}

func CodeStorageExceeded(format string, args ...any) *Error {
	return newErr(CodeCodeStorageExceeded, http.StatusBadRequest, "User", format, args...)
}

func ProvisionedConcurrencyNotFound(format string, args ...any) *Error {
	return newErr(CodeProvisionedConcurrencyNotFound, http.StatusNotFound, "User", format, args...)
}

func NoPublishedVersion(format string, args ...any) *Error {
	return newErr(CodeNoPublishedVersion, http.StatusNotFound, "User", format, args...)
}

func UnknownOperation(format string, args ...any) *Error {
	return newErr(CodeUnknownOperation, http.StatusNotFound, "User", format, args...)
}

func UnsupportedMediaType(format string, args ...any) *Error {
	return newErr(CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "User", format, args...)
}

// Throttled is a 429 TooManyRequestsException with its Reason.
func Throttled(reason, message string) *Error {
	return &Error{Code: CodeTooManyRequests, Status: http.StatusTooManyRequests, Type: "User",
		Message: message, Reason: reason, RetryAfterSeconds: 1}
}

// Service is a 500 ServiceException wrapping an internal failure. The cause is kept
// for logs; the client sees only the message.
func Service(err error, format string, args ...any) *Error {
	e := newErr(CodeService, http.StatusInternalServerError, "Service", format, args...)
	e.Err = err
	return e
}

// Lambda Managed Instances (API 2025-11-30).
const (
	CodeFunctionVersionsPerCapacityProviderLimitExceeded = "FunctionVersionsPerCapacityProviderLimitExceededException"
)

// CapacityProviderLimitExceeded is the 400 CreateCapacityProvider answers when the
// account has as many capacity providers as its quota allows.
func CapacityProviderLimitExceeded(format string, args ...any) *Error {
	return newErr(CodeCapacityProviderLimitExceeded, http.StatusBadRequest, "User", format, args...)
}

// FunctionVersionsPerCapacityProviderLimitExceeded is the 400 CreateFunction and
// PublishVersion answer when a capacity provider already runs as many function
// versions as its quota allows.
func FunctionVersionsPerCapacityProviderLimitExceeded(format string, args ...any) *Error {
	return newErr(CodeFunctionVersionsPerCapacityProviderLimitExceeded, http.StatusBadRequest, "User", format, args...)
}

// NoPublishedVersionToInvoke is NoPublishedVersionException with the status Lambda's
// service model gives it (400): an invocation of a Managed Instances function that
// has no published version.
func NoPublishedVersionToInvoke(format string, args ...any) *Error {
	return newErr(CodeNoPublishedVersion, http.StatusBadRequest, "User", format, args...)
}

// MissingAuthenticationToken is the 403 an unsigned request gets.
func MissingAuthenticationToken() *Error {
	return newErr(CodeMissingAuthenticationToken, http.StatusForbidden, "User", "Missing Authentication Token")
}

// UnrecognizedClient is the 403 a request signed with an unknown access key gets.
func UnrecognizedClient() *Error {
	return newErr(CodeUnrecognizedClient, http.StatusForbidden, "User", "The security token included in the request is invalid.")
}

// SignatureMismatch is the message of InvalidSignatureException for a signature that
// does not match the request.
const SignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// InvalidSignature is the 403 a request gets whose signature does not match it, is
// scoped to another service, region or day, or is more than 5 minutes off.
func InvalidSignature(format string, args ...any) *Error {
	return newErr(CodeInvalidSignature, http.StatusForbidden, "User", format, args...)
}

// IncompleteSignature is the 403 a request gets whose signature cannot be read:
// a malformed Authorization header or credential, or a signed header it lacks.
func IncompleteSignature(format string, args ...any) *Error {
	return newErr(CodeIncompleteSignature, http.StatusForbidden, "User", format, args...)
}
