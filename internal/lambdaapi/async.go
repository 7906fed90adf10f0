package lambdaapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Asynchronous invocation: Invoke with InvocationType Event (and the
// deprecated InvokeAsync) hand the event to the queue and answer 202 at once;
// the five *FunctionEventInvokeConfig operations (API 2019-09-25) say how
// each function qualifier's events are retried and where their records go.
// Destinations and dead-letter targets are Lambda functions or NATS subjects
// (package asyncq says which ARNs).

// asyncRoutes adds the operations of asynchronous invocation.
func (a *api) asyncRoutes(h func(pattern string, fn handlerFunc)) {
	h("POST /2014-11-13/functions/{name}/invoke-async", a.invokeAsync)
	h("PUT /2019-09-25/functions/{name}/event-invoke-config", a.putFunctionEventInvokeConfig)
	h("POST /2019-09-25/functions/{name}/event-invoke-config", a.updateFunctionEventInvokeConfig)
	h("GET /2019-09-25/functions/{name}/event-invoke-config", a.getFunctionEventInvokeConfig)
	h("DELETE /2019-09-25/functions/{name}/event-invoke-config", a.deleteFunctionEventInvokeConfig)
	h("GET /2019-09-25/functions/{name}/event-invoke-config/list", a.listFunctionEventInvokeConfigs)
}

// AsyncInvoker queues asynchronous invocations. The Invoker given to New
// implements it when shoal runs a queue; without it, InvocationType Event is
// refused.
type AsyncInvoker interface {
	// InvokeAsync stores the event (req.Payload, up to asyncq.MaxEventBytes)
	// and returns; the function runs later.
	InvokeAsync(ctx context.Context, req *InvokeRequest) error
}

// invokeEvent answers an Invoke with InvocationType Event: 202 and no body,
// once the event is queued.
func (a *api) invokeEvent(w http.ResponseWriter, r *http.Request, req *InvokeRequest) error {
	if err := a.queue(r.Context(), req); err != nil {
		return err
	}
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (a *api) queue(ctx context.Context, req *InvokeRequest) error {
	ai, ok := a.inv.(AsyncInvoker)
	if !ok {
		return awserr.InvalidParameter("Asynchronous invocation (InvocationType Event) is not available on this server; use RequestResponse.")
	}
	if err := ai.InvokeAsync(ctx, req); err != nil {
		if awserr.As(err) != nil {
			return err
		}
		return awserr.Service(err, "The event could not be queued.")
	}
	return nil
}

// invokeAsync is the deprecated InvokeAsync: POST
// /2014-11-13/functions/{name}/invoke-async, answered 202 {"Status": 202}.
func (a *api) invokeAsync(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.parseFunctionName(r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := a.checkOwner(ref); err != nil {
		return err
	}
	payload, err := a.readPayload(r, asyncq.MaxEventBytes)
	if err != nil {
		return err
	}
	v, err := a.reg.ResolveInvocation(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		if ref.Qualifier == "" && awserr.Is(err, awserr.CodeResourceNotFound) {
			return awserr.NotFound("Function not found: %s", a.reg.FunctionARN(ref.Name, registry.Latest))
		}
		return err
	}
	req := &InvokeRequest{Version: v, Qualifier: ref.Qualifier, InvokedARN: a.reg.FunctionARN(ref.Name, ref.Qualifier),
		RequestID: requestID(w), Payload: payload}
	if err := a.queue(r.Context(), req); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]int{"Status": http.StatusAccepted})
}

// eventInvokeConfigRequest is the body of Put and Update.
type eventInvokeConfigRequest struct {
	MaximumRetryAttempts     *int                      `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int                      `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *destinationConfigRequest `json:"DestinationConfig"`
}

type destinationConfigRequest struct {
	OnSuccess *destinationRequest `json:"OnSuccess"`
	OnFailure *destinationRequest `json:"OnFailure"`
}

type destinationRequest struct {
	Destination *string `json:"Destination"`
}

// eventInvokeConfigResponse is Lambda's FunctionEventInvokeConfig.
type eventInvokeConfigResponse struct {
	DestinationConfig        destinationConfigResponse `json:"DestinationConfig"`
	FunctionArn              string                    `json:"FunctionArn"`
	LastModified             float64                   `json:"LastModified"`
	MaximumEventAgeInSeconds *int                      `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int                      `json:"MaximumRetryAttempts,omitempty"`
}

type destinationConfigResponse struct {
	OnFailure destinationResponse `json:"OnFailure"`
	OnSuccess destinationResponse `json:"OnSuccess"`
}

type destinationResponse struct {
	Destination string `json:"Destination,omitempty"`
}

// eventInvokeResponse renders a qualifier's config.
func (a *api) eventInvokeResponse(function, qualifier string, c *registry.EventInvokeConfig) *eventInvokeConfigResponse {
	if qualifier == "" {
		qualifier = registry.Latest
	}
	out := &eventInvokeConfigResponse{
		FunctionArn:              a.reg.FunctionARN(function, qualifier),
		LastModified:             float64(c.LastModified.UnixMilli()) / 1000,
		MaximumEventAgeInSeconds: c.MaximumEventAgeInSeconds,
		MaximumRetryAttempts:     c.MaximumRetryAttempts,
	}
	if d := c.DestinationConfig; d != nil {
		out.DestinationConfig.OnSuccess.Destination = d.OnSuccess.Destination
		out.DestinationConfig.OnFailure.Destination = d.OnFailure.Destination
	}
	return out
}

// parseEventInvokeConfig reads and checks Put's or Update's body: Lambda's
// syntax (a ValidationException listing each failure), then that it sets
// something.
func parseEventInvokeConfig(r *http.Request) (*eventInvokeConfigRequest, error) {
	var req eventInvokeConfigRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	var v violations
	if n := req.MaximumRetryAttempts; n != nil {
		switch {
		case *n < 0:
			v.add(strconv.Itoa(*n), "maximumRetryAttempts", "Member must have value greater than or equal to 0")
		case *n > registry.MaxRetryAttempts:
			v.add(strconv.Itoa(*n), "maximumRetryAttempts", fmt.Sprintf("Member must have value less than or equal to %d", registry.MaxRetryAttempts))
		}
	}
	if n := req.MaximumEventAgeInSeconds; n != nil {
		switch {
		case *n < registry.MinEventAgeSeconds:
			v.add(strconv.Itoa(*n), "maximumEventAgeInSeconds", fmt.Sprintf("Member must have value greater than or equal to %d", registry.MinEventAgeSeconds))
		case *n > registry.MaxEventAgeSeconds:
			v.add(strconv.Itoa(*n), "maximumEventAgeInSeconds", fmt.Sprintf("Member must have value less than or equal to %d", registry.MaxEventAgeSeconds))
		}
	}
	if d := req.DestinationConfig; d != nil {
		checkDestinationSyntax(d.OnSuccess, "destinationConfig.onSuccess.destination", &v)
		checkDestinationSyntax(d.OnFailure, "destinationConfig.onFailure.destination", &v)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if req.MaximumRetryAttempts == nil && req.MaximumEventAgeInSeconds == nil && req.DestinationConfig == nil {
		return nil, awserr.InvalidParameter("You must specify at least one of error handling or destination setting.")
	}
	return &req, nil
}

// maxDestinationBytes is Lambda's limit on a destination ARN.
const maxDestinationBytes = 350

func checkDestinationSyntax(d *destinationRequest, field string, v *violations) {
	if d == nil || d.Destination == nil {
		return
	}
	arn := *d.Destination
	if len(arn) > maxDestinationBytes {
		v.add(arn, field, fmt.Sprintf("Member must have length less than or equal to %d", maxDestinationBytes))
	}
	if !asyncq.MatchesPattern(arn) {
		v.add(arn, field, "Member must satisfy regular expression pattern: "+asyncq.DestinationPattern)
	}
}

// checkDestinations applies Lambda's rules (and shoal's targets) to the
// destinations a request names for function.
func (a *api) checkDestinations(function string, d *destinationConfigRequest) error {
	if d == nil {
		return nil
	}
	for _, dst := range []*destinationRequest{d.OnSuccess, d.OnFailure} {
		if dst == nil || dst.Destination == nil || *dst.Destination == "" {
			continue
		}
		arn := *dst.Destination
		switch t := asyncq.ParseTarget(arn, a.cfg.Region, a.cfg.AccountID); t.Kind {
		case asyncq.TargetFunction:
			if t.Function == function {
				return awserr.InvalidParameter("You can't specify the function as a destination for itself.")
			}
			if _, err := a.reg.ResolveVersion(context.Background(), t.Function, t.Qualifier); err != nil {
				return awserr.InvalidParameter("The destination ARN %s is invalid.", arn)
			}
		case asyncq.TargetSubject:
		case asyncq.TargetOtherService:
			return awserr.InvalidParameter("The destination ARN %s is invalid. shoal sends invocation records to Lambda functions "+
				"and to NATS subjects (%s), not to SQS, SNS, EventBridge or S3.", arn, asyncq.SubjectARN(a.cfg.Region, a.cfg.AccountID, asyncq.SubjectPrefix+"<name>"))
		default:
			if t.Kind == asyncq.TargetInvalid && isServiceARN(arn, "lambda", "nats") {
				return awserr.InvalidParameter("The destination ARN %s is invalid.", arn)
			}
			return awserr.InvalidParameter("The provided destination config %s is invalid.", describeDestinations(d))
		}
	}
	return nil
}

// isServiceARN reports whether arn names one of the services.
func isServiceARN(arn string, services ...string) bool {
	parts := strings.SplitN(arn, ":", 4)
	return len(parts) == 4 && slices.Contains(services, parts[2])
}

// describeDestinations spells a destination config as Lambda's message does:
// DestinationConfig(onSuccess=OnSuccess(destination=…), onFailure=null).
func describeDestinations(d *destinationConfigRequest) string {
	one := func(name string, dst *destinationRequest) string {
		if dst == nil {
			return "null"
		}
		arn := "null"
		if dst.Destination != nil {
			arn = *dst.Destination
		}
		return name + "(destination=" + arn + ")"
	}
	return "DestinationConfig(onSuccess=" + one("OnSuccess", d.OnSuccess) + ", onFailure=" + one("OnFailure", d.OnFailure) + ")"
}

// checkDeadLetter applies the rules of a DeadLetterConfig of function: its
// target, when set, is a Lambda function other than function, or a NATS subject.
func (a *api) checkDeadLetter(function string, c *registry.DeadLetterConfig) error {
	if c == nil || c.TargetArn == "" {
		return nil
	}
	arn := c.TargetArn
	switch t := asyncq.ParseTarget(arn, a.cfg.Region, a.cfg.AccountID); t.Kind {
	case asyncq.TargetFunction:
		if t.Function == function {
			return awserr.InvalidParameter("The target ARN %s is invalid: a function cannot be its own dead-letter target.", arn)
		}
		if _, err := a.reg.ResolveVersion(context.Background(), t.Function, t.Qualifier); err != nil {
			return awserr.InvalidParameter("The target ARN %s is invalid: the function does not exist.", arn)
		}
	case asyncq.TargetSubject:
	default:
		return awserr.InvalidParameter("The target ARN %s is invalid. shoal sends dead letters to Lambda functions "+
			"and to NATS subjects (%s), not to SQS or SNS.", arn, asyncq.SubjectARN(a.cfg.Region, a.cfg.AccountID, asyncq.SubjectPrefix+"<name>"))
	}
	return nil
}

// eventInvokeRef reads {name} and Qualifier of an event invoke config operation.
func (a *api) eventInvokeRef(r *http.Request) (functionRef, error) {
	ref, err := a.functionRef(r)
	if err != nil {
		return ref, err
	}
	return ref, a.checkOwner(ref)
}

// eventInvokeWrite reads what Put and UpdateFunctionEventInvokeConfig
// share: the reference (the caller owning it), the body, that the function
// exists and that its destinations may be used.
func (a *api) eventInvokeWrite(r *http.Request) (functionRef, *eventInvokeConfigRequest, error) {
	var req *eventInvokeConfigRequest
	ref, err := a.eventInvokeRef(r)
	if err != nil {
		return ref, req, err
	}
	if req, err = parseEventInvokeConfig(r); err != nil {
		return ref, req, err
	}
	if _, err := a.reg.ResolveVersion(r.Context(), ref.Name, ""); err != nil {
		return ref, req, awserr.NotFound("The function doesn't exist.")
	}
	return ref, req, a.checkDestinations(ref.Name, req.DestinationConfig)
}

func (a *api) putFunctionEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	ref, req, err := a.eventInvokeWrite(r)
	if err != nil {
		return err
	}
	c := registry.EventInvokeConfig{MaximumRetryAttempts: req.MaximumRetryAttempts, MaximumEventAgeInSeconds: req.MaximumEventAgeInSeconds}
	if d := req.DestinationConfig; d != nil {
		c.DestinationConfig = &registry.DestinationConfig{}
		mergeDestinations(c.DestinationConfig, d)
	}
	out, err := a.reg.PutEventInvokeConfig(r.Context(), ref.Name, ref.Qualifier, c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.eventInvokeResponse(ref.Name, ref.Qualifier, out))
}

func (a *api) updateFunctionEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	ref, req, err := a.eventInvokeWrite(r)
	if err != nil {
		return err
	}
	out, err := a.reg.UpdateEventInvokeConfig(r.Context(), ref.Name, ref.Qualifier, func(old *registry.EventInvokeConfig) registry.EventInvokeConfig {
		c := *old
		if req.MaximumRetryAttempts != nil {
			c.MaximumRetryAttempts = req.MaximumRetryAttempts
		}
		if req.MaximumEventAgeInSeconds != nil {
			c.MaximumEventAgeInSeconds = req.MaximumEventAgeInSeconds
		}
		if d := req.DestinationConfig; d != nil {
			dc := registry.DestinationConfig{}
			if old.DestinationConfig != nil {
				dc = *old.DestinationConfig
			}
			mergeDestinations(&dc, d)
			c.DestinationConfig = &dc
		}
		return c
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.eventInvokeResponse(ref.Name, ref.Qualifier, out))
}

// mergeDestinations sets the destinations a request names.
func mergeDestinations(dst *registry.DestinationConfig, d *destinationConfigRequest) {
	if d.OnSuccess != nil {
		dst.OnSuccess.Destination = deref(d.OnSuccess.Destination)
	}
	if d.OnFailure != nil {
		dst.OnFailure.Destination = deref(d.OnFailure.Destination)
	}
}

func (a *api) getFunctionEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.eventInvokeRef(r)
	if err != nil {
		return err
	}
	c, err := a.reg.GetEventInvokeConfig(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.eventInvokeResponse(ref.Name, ref.Qualifier, c))
}

func (a *api) deleteFunctionEventInvokeConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.eventInvokeRef(r)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteEventInvokeConfig(r.Context(), ref.Name, ref.Qualifier); err != nil {
		return err
	}
	return writeNoContent(w)
}

type listEventInvokeConfigsResponse struct {
	FunctionEventInvokeConfigs []*eventInvokeConfigResponse `json:"FunctionEventInvokeConfigs"`
	NextMarker                 string                       `json:"NextMarker,omitempty"`
}

func (a *api) listFunctionEventInvokeConfigs(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 50)
	if err != nil {
		return err
	}
	cs, err := a.reg.ListEventInvokeConfigs(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	page, next, err := paginate(cs, func(c registry.QualifiedEventInvokeConfig) string {
		return a.reg.FunctionARN(ref.Name, c.Qualifier)
	}, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listEventInvokeConfigsResponse{FunctionEventInvokeConfigs: make([]*eventInvokeConfigResponse, 0, len(page)), NextMarker: next}
	for _, c := range page {
		out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, a.eventInvokeResponse(ref.Name, c.Qualifier, &c.EventInvokeConfig))
	}
	return writeJSON(w, http.StatusOK, &out)
}
