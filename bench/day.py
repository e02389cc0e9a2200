"""A day in the life of the hotline under load and faults: see ``simulate/day.py`` (also ``hotline simulate``).

    .venv/bin/python bench/day.py                       # 10,000 calls, 50 agents, the day in 20 minutes
    .venv/bin/python bench/day.py --calls 500 --day-seconds 120 --db-outage-s 5
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulate.day import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
