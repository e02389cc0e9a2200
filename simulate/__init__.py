"""A compressed day of the whole hotline under load and faults (``hotline simulate``, ``bench/day.py``)."""
