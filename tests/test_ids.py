"""Job ids are UUIDv7 (RFC 9562): unguessable, and ordered by when they were made."""

import time
import uuid

from redrive.ids import uuid7
from redrive.operations.submit import job_id_for


def test_a_uuid7_carries_its_version_variant_and_creation_time() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_later_sort_after_earlier_ones_and_never_repeat() -> None:
    """Within a millisecond the order is random; across milliseconds it is the order they were made."""
    earlier = [uuid7() for _ in range(1000)]
    time.sleep(0.002)
    later = uuid7()
    assert all(made.hex < later.hex for made in earlier)
    assert len({made.int & (2**62 - 1) for made in earlier}) == 1000  # the 62 random bits at the end


def test_a_new_job_id_is_a_uuid7_and_a_keyed_one_stays_derived_from_its_key() -> None:
    new = job_id_for("a", None)
    assert new.startswith("job-")
    assert uuid.UUID(hex=new.removeprefix("job-")).version == 7
    assert job_id_for("a", "order-1") == job_id_for("a", "order-1") != job_id_for("b", "order-1")
