package asyncq

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// One delivery of an event: read what earlier deliveries left, run an
// attempt, decide, and act on the decision.

// stateSubjectPrefix is where an event's state is kept:
// shoal.async.state.<event's stream sequence>.
const stateSubjectPrefix = "shoal.async.state."

func stateSubject(seq uint64) string { return stateSubjectPrefix + strconv.FormatUint(seq, 10) }

// eventState is what outlives one delivery of an event.
type eventState struct {
	// Runs counts the times the function ran.
	Runs int `json:"runs"`
	// Last is the function's last failed answer.
	Last *Response `json:"last,omitempty"`
	// Done is set once the event's outcome is decided ("success" or
	// "failure"); only its deliveries remain.
	Done       string     `json:"done,omitempty"`
	Deliveries []delivery `json:"deliveries,omitempty"`
}

// delivery is a record or dead letter still to send.
type delivery struct {
	Target string `json:"target"` // the ARN
	// DeadLetter marks a dead letter (the event itself, with attributes).
	DeadLetter bool              `json:"deadLetter,omitempty"`
	Body       []byte            `json:"body"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// ID deduplicates a delivery sent twice (Nats-Msg-Id).
	ID string `json:"id"`
}

// handle delivers one event and returns how its attempt ended (0 if none was
// made).
func (q *Queue) handle(l *lane, msg jetstream.Msg, meta *jetstream.MsgMetadata) Outcome {
	ctx := q.work
	seq := meta.Sequence.Stream
	ev, err := decodeEvent(msg.Subject(), msg.Headers(), msg.Data())
	if err != nil {
		q.log.Error("dropping an undecodable event", "function", l.function, "seq", seq, "err", err)
		_ = msg.Term()
		q.metrics.dropped(l.function)
		return 0
	}
	log := q.log.With("function", ev.Function, "request_id", ev.RequestID)

	var st eventState
	var stSeq uint64
	if meta.NumDelivered > 1 || ev.Accepted.Before(l.started) {
		if st, stSeq, err = q.loadState(ctx, seq); err != nil {
			log.Warn("reading an event's state failed; trying again", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return 0
		}
	}
	if st.Done != "" {
		q.complete(ctx, msg, ev.Function, stSeq, &st, log)
		return 0
	}

	set, err := q.set.EventSettings(ev.Function, ev.Qualifier)
	switch {
	case awserr.Is(err, awserr.CodeResourceNotFound):
		log.Info("dropping an event of a function that no longer exists")
		q.drop(ctx, msg, ev.Function, stSeq, log)
		return OutcomeGone
	case err != nil:
		log.Warn("reading an event's settings failed; trying again", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return 0
	}
	age := q.clock.Now().Sub(ev.Accepted)
	switch {
	case age >= set.MaxEventAge:
		q.fail(ctx, msg, seq, stSeq, &ev, &set, ConditionEventAgeExceeded, st.Runs, st.Last, log)
		return 0
	case set.ReservedZero:
		q.fail(ctx, msg, seq, stSeq, &ev, &set, ConditionZeroReservedConcurrency, st.Runs, st.Last, log)
		return 0
	}

	q.metrics.age(ev.Function, age)
	resp, err := q.inv.InvokeEvent(ctx, &ev)
	if ctx.Err() != nil {
		// shoal is stopping: the event comes back after the restart.
		_ = msg.Nak()
		return 0
	}
	outcome := classify(resp, err)
	runs := st.Runs
	if outcome == OutcomeSuccess || outcome == OutcomeFunctionError {
		runs++
	}
	plan := q.cfg.Policy.Decide(Attempt{
		Outcome: outcome, Age: q.clock.Now().Sub(ev.Accepted), Runs: runs,
		Backoffs:      max(0, int(meta.NumDelivered)-1-st.Runs),
		RetryAttempts: set.RetryAttempts, MaxEventAge: set.MaxEventAge, Managed: set.Managed,
	})
	switch plan.Kind {
	case PlanDone:
		q.succeed(ctx, msg, seq, stSeq, &ev, &set, runs, &resp, log)
	case PlanRetry:
		if outcome == OutcomeFunctionError {
			st.Runs, st.Last = runs, &resp
			if _, err := q.saveState(ctx, seq, &st); err != nil {
				log.Warn("saving an event's state failed", "err", err)
			}
			log.Debug("retrying after a function error", "runs", runs, "delay", plan.Delay)
		} else {
			log.Debug("retrying after a throttle or an error of shoal's", "err", err, "delay", plan.Delay)
		}
		_ = msg.NakWithDelay(plan.Delay)
	case PlanFail:
		last := st.Last
		if outcome == OutcomeFunctionError {
			last = &resp
		}
		q.fail(ctx, msg, seq, stSeq, &ev, &set, plan.Condition, runs, last, log)
	case PlanDrop:
		log.Info("dropping an event that cannot run", "err", err)
		q.drop(ctx, msg, ev.Function, stSeq, log)
	}
	return outcome
}

// classify turns an attempt's answer into its outcome.
func classify(resp Response, err error) Outcome {
	if err == nil {
		if resp.FunctionError != "" {
			return OutcomeFunctionError
		}
		return OutcomeSuccess
	}
	e := awserr.As(err)
	switch {
	case e == nil || e.Status >= 500:
		return OutcomeServiceError
	case e.Status == http.StatusTooManyRequests:
		return OutcomeThrottled
	default:
		return OutcomeGone
	}
}

// succeed finishes an event whose function succeeded: its record goes to the
// OnSuccess destination, if any.
func (q *Queue) succeed(ctx context.Context, msg jetstream.Msg, seq, stSeq uint64, ev *Event, set *EventSettings,
	runs int, resp *Response, log *slog.Logger) {
	if set.OnSuccess == "" {
		q.ack(ctx, msg, stSeq, log)
		return
	}
	rec := newRecord(q.clock.Now(), ev.RequestID, resp.FunctionARN, ConditionSuccess, runs, ev.Payload, resp)
	st := eventState{Runs: runs, Done: "success",
		Deliveries: []delivery{{Target: set.OnSuccess, Body: mustJSON(rec), ID: ev.RequestID + ":" + ConditionSuccess}}}
	q.finishWith(ctx, msg, seq, ev.Function, &st, log)
}

// fail finishes an event that failed for good: it is dropped, and its record
// goes to the OnFailure destination and the event to the dead-letter target.
func (q *Queue) fail(ctx context.Context, msg jetstream.Msg, seq, stSeq uint64, ev *Event, set *EventSettings,
	condition string, runs int, last *Response, log *slog.Logger) {
	q.metrics.dropped(ev.Function)
	st := eventState{Runs: runs, Done: "failure"}
	if set.OnFailure != "" {
		rec := newRecord(q.clock.Now(), ev.RequestID, set.FunctionARN, condition, runs, ev.Payload, last)
		st.Deliveries = append(st.Deliveries, delivery{Target: set.OnFailure, Body: mustJSON(rec), ID: ev.RequestID + ":" + condition})
	}
	if set.DeadLetter != "" {
		// The attributes Lambda gives a dead letter in SQS.
		code, message := "200", ""
		if last != nil {
			message = errorMessage(last.Payload)
		} else {
			code = strconv.Itoa(http.StatusTooManyRequests)
			message = condition
		}
		st.Deliveries = append(st.Deliveries, delivery{Target: set.DeadLetter, DeadLetter: true, Body: ev.Payload,
			Attributes: map[string]string{"RequestID": ev.RequestID, "ErrorCode": code, "ErrorMessage": message},
			ID:         ev.RequestID + ":DeadLetter"})
	}
	if len(st.Deliveries) == 0 {
		q.ack(ctx, msg, stSeq, log)
		return
	}
	q.finishWith(ctx, msg, seq, ev.Function, &st, log)
}

// finishWith marks the event done with its deliveries, then sends them. From
// the mark on, a redelivery of the event only finishes the sending.
func (q *Queue) finishWith(ctx context.Context, msg jetstream.Msg, seq uint64, function string, st *eventState, log *slog.Logger) {
	stSeq, err := q.saveState(ctx, seq, st)
	if err != nil {
		// Without the mark, send anyway: a redelivery would run the event again.
		log.Warn("marking an event done failed", "err", err)
	}
	q.complete(ctx, msg, function, stSeq, st, log)
}

// complete sends what a done event still has to send, then acknowledges it.
// A delivery that fails for a while brings the event back later.
func (q *Queue) complete(ctx context.Context, msg jetstream.Msg, function string, stSeq uint64, st *eventState, log *slog.Logger) {
	for _, d := range st.Deliveries {
		if err := q.deliver(ctx, function, d); err != nil {
			var p permanent
			if errors.As(err, &p) {
				log.Warn("a record or dead letter could not be delivered", "target", d.Target, "err", err)
				continue
			}
			log.Warn("delivering a record or dead letter failed; trying again", "target", d.Target, "err", err)
			_ = msg.NakWithDelay(q.cfg.Policy.BackoffMin)
			return
		}
	}
	q.ack(ctx, msg, stSeq, log)
}

// drop acknowledges an event that is dropped without a record.
func (q *Queue) drop(ctx context.Context, msg jetstream.Msg, function string, stSeq uint64, log *slog.Logger) {
	q.metrics.dropped(function)
	q.ack(ctx, msg, stSeq, log)
}

// ack acknowledges a finished event, waiting for the server to confirm it,
// then deletes its state (stSeq, 0 if none).
func (q *Queue) ack(ctx context.Context, msg jetstream.Msg, stSeq uint64, log *slog.Logger) {
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("acknowledging a finished event failed", "err", err)
		return
	}
	if stSeq != 0 {
		if err := q.state.DeleteMsg(ctx, stSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			log.Warn("deleting a finished event's state failed", "err", err)
		}
	}
}

// loadState reads an event's state; a zero state if it has none.
func (q *Queue) loadState(ctx context.Context, seq uint64) (eventState, uint64, error) {
	var st eventState
	m, err := q.state.GetLastMsgForSubject(ctx, stateSubject(seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return eventState{}, 0, err
	}
	return st, m.Sequence, nil
}

// saveState stores an event's state and returns its sequence.
func (q *Queue) saveState(ctx context.Context, seq uint64, st *eventState) (uint64, error) {
	ack, err := q.js.Publish(ctx, stateSubject(seq), mustJSON(st))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // records and states are plain structs
	}
	return b
}
