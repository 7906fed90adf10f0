package asyncq

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lambda's asynchronous invocation metrics, per function, under shoal's names:
// AsyncEventsReceived, AsyncEventAge, AsyncEventsDropped, DeadLetterErrors and
// DestinationDeliveryFailures.
type metrics struct {
	eventsReceived, eventsDropped      *prometheus.CounterVec
	deadLetterErrors, deliveryFailures *prometheus.CounterVec
	eventAge                           *prometheus.HistogramVec
}

// ageBuckets run from a millisecond to the largest maximum event age, in seconds.
var ageBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800, 21600}

func newMetrics() *metrics {
	fn := []string{"function"}
	m := &metrics{
		eventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_async_events_received_total",
			Help: "AsyncEventsReceived: events the function's asynchronous invocation queue took."}, fn),
		eventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_async_events_dropped_total",
			Help: "AsyncEventsDropped: events dropped without the function succeeding (retries exhausted, maximum age exceeded, reserved concurrency 0, function deleted); those with a failure destination or dead-letter target were sent there first."}, fn),
		deadLetterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_dead_letter_errors_total",
			Help: "DeadLetterErrors: failed attempts to send a dropped event to the function's dead-letter target."}, fn),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_function_destination_delivery_failures_total",
			Help: "DestinationDeliveryFailures: failed attempts to send an invocation record to a destination."}, fn),
		eventAge: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shoal_function_async_event_age_seconds",
			Help: "AsyncEventAge: the time from when the queue took an event to each attempt to run it.", Buckets: ageBuckets}, fn),
	}
	return m
}

// register exposes the series on reg.
func (m *metrics) register(reg prometheus.Registerer) {
	reg.MustRegister(m.eventsReceived, m.eventsDropped, m.deadLetterErrors, m.deliveryFailures, m.eventAge)
}

func (m *metrics) received(function string) { m.eventsReceived.WithLabelValues(function).Inc() }
func (m *metrics) dropped(function string)  { m.eventsDropped.WithLabelValues(function).Inc() }
func (m *metrics) droppedN(function string, n int) {
	if n > 0 {
		m.eventsDropped.WithLabelValues(function).Add(float64(n))
	}
}
func (m *metrics) deadLetterError(function string) {
	m.deadLetterErrors.WithLabelValues(function).Inc()
}
func (m *metrics) deliveryFailure(function string) {
	m.deliveryFailures.WithLabelValues(function).Inc()
}
func (m *metrics) age(function string, d time.Duration) {
	m.eventAge.WithLabelValues(function).Observe(d.Seconds())
}
