"""`bench.server_counts` reads the figures it reports from a Prometheus exposition."""

from bench.server_counts import per_job, totals

EXPOSITION = """\
# HELP persistence_requests persistence_requests counter
# TYPE persistence_requests counter
persistence_requests{operation="UpdateWorkflowExecution",service_name="history"} 110
persistence_requests{operation="CreateTasks",service_name="matching"} 12
visibility_persistence_requests{operation="RecordWorkflowExecutionStarted"} 10
visibility_persistence_requests{operation="ListWorkflowExecutions"} 7
task_requests{operation="TimerActiveTaskActivityTimeout",task_type="x"} 30
event_blob_size_sum{operation="UpdateWorkflowExecution"} 20480
event_blob_size_count{operation="UpdateWorkflowExecution"} 40
mutable_state_size_sum 1024
poll_success_sync{task_queue="q",task_type="Workflow"} 6
poll_success_sync{task_queue="q",task_type="Activity"} 3
"""


def test_totals_sum_each_series_over_its_labels_or_one_label_and_leave_out_visibility_reads() -> None:
    assert totals(EXPOSITION) == {
        "persistence_requests": 122.0,
        "visibility_persistence_requests": 10.0,
        "task_requests": 30.0,
        "event_blob_size_sum": 20480.0,
        "mutable_state_size_sum": 1024.0,
        "poll_success_sync": 9.0,
        'persistence_requests{operation="CreateTasks"}': 12.0,
    }


def test_per_job_is_the_growth_between_readings_divided_by_the_jobs() -> None:
    before = totals(EXPOSITION)
    after = {
        **before,
        "persistence_requests": 222.0,
        "event_blob_size_sum": 40960.0,
        'persistence_requests{operation="CreateTasks"}': 32.0,
    }
    assert per_job(before, after, 10) == {
        "db requests": 10.0,
        "visibility writes": 0.0,
        "history tasks": 0.0,
        "event bytes": 2048.0,
        "state bytes": 0.0,
        "sync matches": 0.0,
        "task-queue writes": 2.0,
    }
