package env

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/internal/runtimeapi"
)

// Invoke runs one invocation on a free slot. It returns ErrBusy at once when
// every slot is taken (it never queues) and ErrClosed once the environment
// is closing, or when its runtime exits before taking the invocation: either
// way the runtime never saw it, and the caller places it elsewhere. When ctx
// ends first (the caller went away) Invoke returns ctx's error; the runtime's
// later answer is still accepted and dropped, and the END and REPORT lines
// are still written.
//
// The START line is written when the runtime takes the invocation (its next
// poll is answered), so an invocation that moves to another environment
// leaves no trace in this one.
func (e *Environment) Invoke(ctx context.Context, inv Invocation) (Result, error) {
	if e.closing.Load() {
		return Result{}, ErrClosed
	}
	start := e.clock.Now()
	deadline := inv.Deadline
	if deadline.IsZero() {
		deadline = start.Add(e.fnTimout)
	}
	rinv := &runtimeapi.Invocation{
		ID: inv.RequestID, Payload: inv.Payload, Deadline: deadline,
		InvokedARN: inv.InvokedARN, TraceID: inv.TraceID,
		ClientContext: inv.ClientContext, CognitoIdentity: inv.CognitoIdentity,
		TenantID: inv.TenantID,
	}
	if rinv.InvokedARN == "" {
		rinv.InvokedARN = e.spec.FunctionARN
	}
	var guard *streamGuard
	if inv.Stream != nil {
		guard = &streamGuard{w: inv.Stream}
		rinv.Stream = guard
	}
	// Count first, then look at closing: Close sets closing, then waits for
	// the count to drop, so no invocation slips past a Close.
	e.inflight.Add(1)
	if e.closing.Load() {
		e.release()
		return Result{}, ErrClosed
	}
	var t *tail
	if inv.TailLog {
		t = &tail{}
	}
	// The tail collects from before the runtime can see the invocation, so
	// none of its lines is missed: on one slot as the current tail, on
	// several by request id.
	watched := e.slots > 1 && t != nil
	var prev *tail
	if e.slots == 1 {
		prev = e.logs.begin(t)
	} else {
		e.logs.begin(nil)
		if watched {
			e.logs.watch(inv.RequestID, t)
		}
	}
	timer := e.clock.NewTimer(deadline.Sub(start))
	w := &waiter{inv: rinv, tail: t, start: start, timer: timer, stream: guard}
	rinv.Owner = w
	if err := e.api.Submit(rinv); err != nil {
		timer.Stop()
		if watched {
			e.logs.unwatch(inv.RequestID)
		}
		if e.slots == 1 {
			e.logs.restore(prev) // the slot is another invocation's
		}
		e.release()
		if errors.Is(err, runtimeapi.ErrNoSlot) {
			return Result{}, ErrBusy
		}
		return Result{}, ErrClosed
	}
	select {
	case o := <-rinv.Done():
		return e.finish(w, o, outcomeAnswer), nil
	case <-timer.C():
		if e.api.Withdraw(rinv) {
			// Never taken: it timed out waiting for the runtime.
			e.logStart(w)
		}
		return e.finish(w, runtimeapi.Outcome{}, outcomeTimeout), nil
	case <-e.exited:
		if e.api.Withdraw(rinv) {
			e.withdrawn(w, watched)
			return Result{}, ErrClosed
		}
		return e.finish(w, e.afterExit(rinv), outcomeExit), nil
	case <-ctx.Done():
		if e.api.Withdraw(rinv) {
			e.withdrawn(w, watched)
			return Result{}, ctx.Err()
		}
		w.stream.close() // the caller is gone: nothing more reaches its stream
		go func() { _ = e.wait(w) }()
		return Result{}, ctx.Err()
	}
}

// taken is the Runtime API's OnTake: the runtime is about to see the
// invocation, so its START line is written now.
func (e *Environment) taken(inv *runtimeapi.Invocation) {
	if w, ok := inv.Owner.(*waiter); ok {
		e.logStart(w)
	}
}

// logStart writes START (or platform.start) for the invocation w.
func (e *Environment) logStart(w *waiter) {
	switch {
	case !e.levels.json:
		e.logs.platform("START RequestId: "+w.inv.ID+" Version: "+e.spec.Version, w.tail, false)
	case e.levels.sys <= levelInfo:
		e.logs.platform(e.startRecord(w.start, w.inv.ID, w.inv.TenantID), w.tail, false)
	}
}

// withdrawn releases an invocation the runtime never took.
func (e *Environment) withdrawn(w *waiter, watched bool) {
	w.timer.Stop()
	w.stream.close()
	if e.slots == 1 {
		e.logs.end()
	} else if watched {
		e.logs.unwatch(w.inv.ID)
	}
	e.release()
}

// waiter is an invocation the runtime holds.
type waiter struct {
	inv   *runtimeapi.Invocation
	tail  *tail
	start time.Time
	timer interface {
		C() <-chan time.Time
		Stop() bool
	}
	stream *streamGuard // nil unless the caller streams
}

type outcomeKind int

const (
	outcomeAnswer outcomeKind = iota
	outcomeTimeout
	outcomeExit
)

// wait finishes an invocation whose caller has gone.
func (e *Environment) wait(w *waiter) Result {
	select {
	case o := <-w.inv.Done():
		return e.finish(w, o, outcomeAnswer)
	case <-w.timer.C():
		return e.finish(w, runtimeapi.Outcome{}, outcomeTimeout)
	case <-e.exited:
		return e.finish(w, e.afterExit(w.inv), outcomeExit)
	}
}

// afterExit prefers an answer that raced with the runtime's exit.
func (e *Environment) afterExit(inv *runtimeapi.Invocation) runtimeapi.Outcome {
	select {
	case o := <-inv.Done():
		return o
	default:
		return runtimeapi.Outcome{ErrorType: "exit"}
	}
}

func (e *Environment) release() {
	if e.inflight.Add(-1) == 0 && e.closing.Load() {
		select {
		case e.idle <- struct{}{}:
		default:
		}
	}
}

// finish turns an outcome into a Result and writes END and REPORT.
func (e *Environment) finish(w *waiter, o runtimeapi.Outcome, kind outcomeKind) Result {
	w.timer.Stop()
	w.stream.close()
	now := e.clock.Now()
	id := w.inv.ID
	var r Result
	if kind == outcomeExit && o.ErrorType != "exit" {
		kind = outcomeAnswer
	}
	status := "" // the REPORT line's Status, for invocations the platform ended
	switch {
	case kind == outcomeTimeout:
		status = "timeout"
	case kind == outcomeExit || o.WorkerExited:
		status = "error"
	}
	switch kind {
	case outcomeAnswer:
		r.Payload = o.Payload
		r.Streamed, r.ContentType = o.Streamed, o.ContentType
		if o.Error {
			r.FunctionError = "Unhandled"
			r.ErrorType = o.ErrorType
		}
		if o.WorkerExited {
			// One worker of a multi-slot environment died; the others serve on.
			msg := withRequestID(id, "Runtime exited without providing a reason")
			r.Payload = errorJSON(r.ErrorType, msg)
			if !e.levels.json {
				e.logs.platform(msg, w.tail, true)
			}
			r.Replace = e.slots == 1
		}
	case outcomeTimeout:
		msg := timeoutMessage(e.fnTimout)
		if !e.levels.json {
			e.logs.platform(now.UTC().Format("2006-01-02T15:04:05.000Z")+" "+id+" "+msg, w.tail, true)
		}
		r.FunctionError, r.ErrorType = "Unhandled", "Sandbox.Timedout"
		r.Payload = errorJSON(r.ErrorType, withRequestID(id, msg))
		// A timeout ends a classic environment. On Managed Instances it fails
		// only that invocation; the environment serves on.
		r.Replace = e.slots == 1 && e.spec.InitType != InitManagedInstances
	case outcomeExit:
		msg := exitMessage(e.exitErr)
		r.FunctionError, r.ErrorType = "Unhandled", "Runtime.ExitError"
		if e.exitOOM {
			r.ErrorType = "Runtime.OutOfMemory"
		}
		r.Payload = errorJSON(r.ErrorType, withRequestID(id, msg))
		if !e.levels.json {
			e.logs.platform(withRequestID(id, msg), w.tail, true)
			if r.ErrorType == "Runtime.OutOfMemory" {
				e.logs.platform(r.ErrorType, w.tail, false)
			}
		}
		r.Replace = true
	}
	r.Duration = now.Sub(w.start)
	// The first invocation after a cold start reports the init; provisioned
	// and Managed Instances environments, initialised ahead of demand, do not.
	if !e.initReported.Swap(true) && e.spec.InitType != InitProvisioned && e.spec.InitType != InitManagedInstances {
		r.InitDuration = e.initDur
	}
	// Lambda bills an on-demand cold start's init with its first invocation
	// (since August 2025); Managed Instances bill no duration at all.
	if e.spec.InitType == InitOnDemand || e.spec.InitType == "" {
		r.BilledDuration = billed(r.Duration + r.InitDuration)
	} else {
		r.BilledDuration = billed(r.Duration)
	}
	r.MaxMemoryUsedMB = int((e.mem.peakFor(now, r.Duration) + (1<<20 - 1)) >> 20)
	if r.Duration >= cpuReadMin || kind != outcomeAnswer {
		// A one-slot environment is idle between invocations, so its CPU
		// time since the last reading belongs to this invocation and the
		// short ones before it; a multi-slot one shares it among the
		// invocations that finish, in the order they finish. Either way the
		// sum over results is the environment's total.
		// After the sandbox is gone the reading is 0: report nothing then.
		if cpu, last := int64(e.box.CPUTime()), e.lastCPU.Load(); cpu >= last && e.lastCPU.CompareAndSwap(last, cpu) {
			r.CPUTime = time.Duration(cpu - last)
		}
	}
	if e.levels.json {
		// The JSON records carry the platform's errors (no text lines): a
		// timeout, an exit, or an error the runtime reported.
		jsonStatus, errorType := status, r.ErrorType
		switch {
		case status == "timeout" && e.spec.InitType != InitManagedInstances:
			errorType = "" // Managed Instances keep Sandbox.Timedout
		case status == "":
			jsonStatus, errorType = "success", ""
			if r.FunctionError != "" {
				jsonStatus, errorType = "error", recordErrorType(r.ErrorType)
			}
		}
		produced := 0
		if kind == outcomeAnswer && !o.WorkerExited {
			produced = len(o.Payload)
			if o.Streamed {
				produced = int(o.Bytes)
			}
		}
		e.finishRecords(now, id, w, &r, jsonStatus, errorType, produced)
	} else {
		e.logs.platform("END RequestId: "+id, w.tail, true)
		e.logs.platform(e.report(id, &r, status), w.tail, false)
	}
	if e.slots == 1 {
		e.logs.end()
	} else if w.tail != nil {
		e.logs.unwatch(id)
	}
	r.LogTail = w.tail.bytes()
	if e.usage != nil {
		e.usage.InvocationDone(&e.spec, id, w.start, &r)
	}
	e.release()
	if r.Replace {
		go e.Close(context.Background())
	}
	return r
}

// cpuReadMin is the shortest invocation whose CPU time is read: a cgroup v1
// cpuacct read costs tens of microseconds, too much for every warm invoke.
const cpuReadMin = 5 * time.Millisecond

// billed rounds a duration up to the millisecond, as Lambda bills.
func billed(d time.Duration) time.Duration {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms < 1 {
		ms = 1
	}
	return ms * time.Millisecond
}

func ms2(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// report renders Lambda's REPORT line; invocations the platform ended
// carry "Status: timeout" or "Status: error\tError Type: …".
func (e *Environment) report(id string, r *Result, status string) string {
	s := "REPORT RequestId: " + id +
		"\tDuration: " + ms2(r.Duration) + " ms" +
		"\tBilled Duration: " + strconv.FormatInt(int64(r.BilledDuration/time.Millisecond), 10) + " ms" +
		"\tMemory Size: " + e.memStr + " MB" +
		"\tMax Memory Used: " + strconv.Itoa(r.MaxMemoryUsedMB) + " MB"
	if r.InitDuration > 0 {
		s += "\tInit Duration: " + ms2(r.InitDuration) + " ms"
	}
	switch status {
	case "timeout":
		s += "\tStatus: timeout"
	case "error":
		s += "\tStatus: error\tError Type: " + r.ErrorType
	}
	return s + "\t"
}
