"""`invoice`: charge a card, then e-mail a receipt. Declared as a team would, outside redrive."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from redrive import JobType, PermanentError, Retry, RetryableError, Stage, StageContext


class CardDeclined(PermanentError):
    """The bank said no: no retry will change that."""


class MailServerDown(RetryableError):
    """The mail server did not answer; it will."""


class Invoice(BaseModel):
    """What an invoice job needs."""

    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)
    card: str = "ok"
    mail_down_while: str | None = None
    """A file: the receipt's mail server is down while it exists (for trying retries out)."""


async def charge(context: StageContext) -> dict[str, object]:
    """Charge the card, or refuse for good."""
    invoice = Invoice.model_validate(context.payload)
    context.logger.info("charging %s", invoice.customer)
    if invoice.card == "declined":
        raise CardDeclined(f"card of {invoice.customer} declined")
    return {"charged_cents": invoice.amount_cents}


async def send_receipt(context: StageContext) -> dict[str, object]:
    """E-mail the receipt for what `charge` charged."""
    invoice = Invoice.model_validate(context.payload)
    if invoice.mail_down_while is not None and await asyncio.to_thread(Path(invoice.mail_down_while).exists):
        raise MailServerDown("mail server not answering", retry_after=timedelta(milliseconds=200))
    return {"receipt_for_cents": context.outputs["charge"]["charged_cents"]}


QUICK = Retry(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1, max_retries=1)

INVOICE = JobType(
    name="invoice",
    description="Charge a card, then e-mail the receipt.",
    stages=[
        Stage(name="charge", handler=charge, retry=QUICK),
        Stage(name="receipt", handler=send_receipt, retry=QUICK),
    ],
    payload_model=Invoice,
    labels={
        "queued": "received",
        "running:charge": "charging",
        "retrying:charge": "charge_failed",
        "running:receipt": "sending_receipt",
        "retrying:receipt": "receipt_failed",
        "complete": "paid",
    },
)

JOB_TYPES = [INVOICE]
