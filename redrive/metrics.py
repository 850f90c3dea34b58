"""What redrive counts, for Prometheus. Names and labels are the same wherever they are served:
the API serves its own on `GET /metrics` (prometheus-client), a worker serves its own with the
Temporal SDK's (task slots, poll and schedule-to-start latency, …) on `REDRIVE_METRICS_PORT`.
Job types, stages, reasons and error types are labels; tenants and job ids never are (cardinality).

API:    redrive_jobs_submitted_total{job_type}, redrive_replays_total{job_type,mode},
        redrive_dead_letters_pending{job_type,reason}, redrive_breaker_state{job_type,stage,key,state}
        (1 for the breaker's state), redrive_breaker_held_jobs{job_type,stage,key}  (read from the
        database at each scrape)
Worker: redrive_stage_attempts_total{job_type,stage,outcome}, redrive_stage_failures_total{job_type,
        stage,error_type}, redrive_stage_duration_seconds{job_type,stage} (histogram),
        redrive_jobs_completed_total{job_type}, redrive_jobs_dead_lettered_total{job_type,reason},
        redrive_alerts_total{outcome}, redrive_maintenance_passes_total
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge
from temporalio.common import MetricCounter, MetricHistogramFloat, MetricMeter


@dataclass
class ApiMetrics:
    """The API's metrics, in a registry of their own (one per app)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.submitted = Counter(
            "redrive_jobs_submitted", "Jobs submitted (repeats of an idempotency key not counted).",
            ["job_type"], registry=self.registry,
        )  # fmt: skip
        self.replays = Counter(
            "redrive_replays", "Dead jobs started again, by retry or replay: mode reset or resubmitted.",
            ["job_type", "mode"], registry=self.registry,
        )  # fmt: skip
        self.pending = Gauge(
            "redrive_dead_letters_pending", "Dead letters not replayed yet, archived ones included.",
            ["job_type", "reason"], registry=self.registry,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "redrive_breaker_state", "1 for each circuit breaker's state (closed, open or half_open).",
            ["job_type", "stage", "key", "state"], registry=self.registry,
        )  # fmt: skip
        self.breaker_held = Gauge(
            "redrive_breaker_held_jobs", "Jobs a circuit breaker holds (paused or waiting).",
            ["job_type", "stage", "key"], registry=self.registry,
        )  # fmt: skip


class WorkerMetrics:
    """A worker's metrics, recorded through the Temporal SDK's meter so that they are served with the
    SDK's own on the worker's metrics port (the no-op meter when metrics are off)."""

    def __init__(self, meter: MetricMeter = MetricMeter.noop) -> None:
        self.attempts: MetricCounter = meter.create_counter(
            "redrive_stage_attempts", "Stage attempts, by outcome (success or failed)."
        )
        self.failures: MetricCounter = meter.create_counter(
            "redrive_stage_failures", "Failed stage attempts, by error type."
        )
        self.duration: MetricHistogramFloat = meter.create_histogram_float(
            "redrive_stage_duration", "How long stage attempts ran.", "seconds"
        )
        self.completed: MetricCounter = meter.create_counter("redrive_jobs_completed", "Jobs completed.")
        self.dead_lettered: MetricCounter = meter.create_counter(
            "redrive_jobs_dead_lettered", "Jobs sent to the dead-letter queue, by reason."
        )
        self.alerts: MetricCounter = meter.create_counter(
            "redrive_alerts", "Dead-letter alerts: sent, counted (for a digest) or failed."
        )
        self.maintenance_passes: MetricCounter = meter.create_counter(
            "redrive_maintenance_passes", "Maintenance passes that reached their last step."
        )
