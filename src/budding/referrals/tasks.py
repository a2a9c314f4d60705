"""Background jobs of the referrals capability (on the durable job queue)."""

from __future__ import annotations

from budding.core.jobs import JobContext, job
from budding.core.mail import Mail, send_mail


@job(retries=5, retry_delay=60)
def send_email(
    ctx: JobContext, to: str, subject: str, text: str, html: str | None = None
) -> dict[str, str]:
    """Send one e-mail (waitlist confirmation, invitation); retried with backoff when the
    mail server cannot be reached."""
    send_mail(Mail(to=to, subject=subject, text=text, html=html))
    return {"to": to}
