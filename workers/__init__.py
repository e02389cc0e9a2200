"""RQ workers and the jobs they run: call records, work orders, return visits, reports."""
