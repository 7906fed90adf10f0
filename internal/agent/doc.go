// Package agent is the instance agent daemon (`shoal agent`): one process
// per instance of a Managed Instances capacity provider. It connects to the
// control plane's NATS, announces itself and heartbeats its state, host
// metrics and environments on HeartbeatSubject, answers commands (start,
// stop and drain environments, drain and shut down the instance) by
// request/reply on CommandSubject, fetches code packages from the JetStream
// object store, and serves invocations over internal/wire on a Unix socket or
// TCP port, routing each to the environment it names.
//
// The agent never queues: an invocation whose environment has no free slot,
// is draining, or whose instance's CPU or memory is above its threshold is
// refused at once with a wire.RefusedError, and the router places it
// elsewhere. Placement, scaling and re-placing failed environments belong to
// the control plane; the agent only reports (a crashed environment shows as
// "failed" in heartbeats until it is stopped).
//
// Client is the control plane's side of the command protocol.
package agent
