"""Progress for Python functions run by Jobs: report(fraction, message) shows in the job's JobView and dashboard."""

import sys


def report(fraction: float, message: str | None = None) -> None:
    """Records how far the running job is (0..1). Outside a Jobs worker it does nothing."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction is between 0 and 1")
    host = sys.modules.get("__main__")
    if getattr(host, "PROTOCOL", None) is None or not callable(getattr(host, "report_progress", None)):
        return
    host.report_progress(fraction, message)  # on the host's private channel, with the running call's id
