"""Stage handlers by activity name: the code behind each stage the job-type registry declares."""

from activities.context import Handler
from activities.handlers import demo, webhook

HANDLERS: dict[str, Handler] = {
    "webhook.deliver": webhook.deliver,
    "demo.prepare": demo.run_stage,
    "demo.process": demo.run_stage,
    "demo.finish": demo.run_stage,
}

__all__ = ["HANDLERS"]
