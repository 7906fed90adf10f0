package asyncq

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/randid"
)

// Sending records and dead letters. A function target gets them as an
// asynchronous invocation (queued here, with the record as its payload); a
// subject target as a message published on it, which SHOAL_DESTINATIONS
// keeps. Both are sent with a message id, so that sending again after a
// crash is not seen twice within the streams' duplicate window.

// permanent is a delivery error that trying again cannot cure.
type permanent struct{ error }

// deliver sends one record or dead letter of an event of function source,
// counting a failure in source's DeadLetterErrors or
// DestinationDeliveryFailures.
func (q *Queue) deliver(ctx context.Context, source string, d delivery) error {
	err := q.send(ctx, d)
	if err != nil {
		if d.DeadLetter {
			q.metrics.deadLetterError(source)
		} else {
			q.metrics.deliveryFailure(source)
		}
	}
	return err
}

func (q *Queue) send(ctx context.Context, d delivery) error {
	t := ParseTarget(d.Target, q.cfg.Region, q.cfg.AccountID)
	switch t.Kind {
	case TargetFunction:
		if len(d.Body) > MaxEventBytes {
			return permanent{fmt.Errorf("%d bytes exceed the %d of an asynchronous invocation", len(d.Body), MaxEventBytes)}
		}
		if _, err := q.set.EventSettings(t.Function, t.Qualifier); awserr.Is(err, awserr.CodeResourceNotFound) {
			return permanent{fmt.Errorf("function %s does not exist", d.Target)}
		} else if err != nil {
			return err
		}
		ev := Event{RequestID: randid.UUID(), Function: t.Function, Qualifier: t.Qualifier, InvokedARN: t.ARN, Payload: d.Body}
		if err := q.enqueue(ctx, &ev, d.ID); err != nil {
			return err
		}
		q.metrics.received(t.Function)
		return nil
	case TargetSubject:
		if len(d.Body) > bus.MaxPayload-64<<10 {
			return permanent{fmt.Errorf("%d bytes exceed what the bus carries", len(d.Body))}
		}
		m := nats.NewMsg(t.Subject)
		m.Data = d.Body
		for k, v := range d.Attributes {
			m.Header.Set(k, v)
		}
		m.Header.Set(nats.MsgIdHdr, d.ID)
		_, err := q.js.PublishMsg(ctx, m)
		return err
	default:
		return permanent{fmt.Errorf("%s: shoal sends records and dead letters to Lambda functions and NATS subjects only", d.Target)}
	}
}
