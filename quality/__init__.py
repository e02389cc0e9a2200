"""Quality: evaluation forms, scoring, sampling calls for review, evaluations and scorecards."""
