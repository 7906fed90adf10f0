package ledger

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the recorder's Prometheus counters, for the /metrics of the
// process that records: what could not be journaled, publications that
// failed, damaged journal lines, and what the ledger acknowledged. Metering
// never stops silently: each of the first three counts something a report
// would otherwise miss or get late.
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_usage_record_failures_total",
			Help: "Usage events that could not be journaled (a full disk, a failed segment rollover): no ledger holds them."},
			func() float64 { return float64(r.Failed()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_usage_publish_failures_total",
			Help: "Rounds of publication to the usage ledger that failed; their events wait in the journal for a later round."},
			func() float64 { return float64(r.PublishFailures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_usage_damaged_lines_total",
			Help: "Usage journal lines found damaged and skipped: their events are lost."},
			func() float64 { return float64(r.Damaged()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_usage_events_published_total",
			Help: "Usage events the ledger acknowledged."},
			func() float64 { return float64(r.Published()) }),
	}
}
