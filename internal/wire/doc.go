// Package wire is the invoke protocol between the control plane's router and
// an instance agent: one persistent connection per agent (a Unix socket on
// the same host, TCP across hosts) carrying any number of invocations at once,
// each matched to its answer by a request id, in length-prefixed binary
// frames. Payloads travel as opaque bytes; nothing on this path encodes JSON.
//
// An agent answers each invocation with its result, a refusal (*RefusedError:
// the environment is saturated or draining, the instance's CPU or memory is
// exhausted, or the environment is unknown) that lets the router try another
// environment at once, or an error. A caller that gives up sends a cancel
// frame; the agent cancels the invocation's context and drops its answer. A
// broken connection fails every call in flight and closes Done.
//
// The package owns framing and multiplexing only: it knows nothing of NATS,
// placement or environments beyond the Handler it is given.
package wire
