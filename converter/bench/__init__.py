"""`npuconv bench`'s engine: statistics, FLOPs, worker subprocesses timed in interleaved rounds, gates
(SLOs, regression against an earlier run), the report and its CSV and plot. Prints nothing."""
