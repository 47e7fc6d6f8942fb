"""Progress for Python functions run by Jobs: report(fraction, message) shows in the job's JobView and dashboard."""

import json
import sys


def report(fraction: float, message: str | None = None) -> None:
    """Records how far the running job is (0..1). Outside a Jobs worker it does nothing."""
    if not 0 <= fraction <= 1:
        raise ValueError("fraction is between 0 and 1")
    if sys.modules.get("__main__") is None or not getattr(sys.modules["__main__"], "PROTOCOL", None):
        return
    sys.__stdout__.write(json.dumps({"progress": fraction, "message": message}) + "\n")
    sys.__stdout__.flush()
