"""`vadctl run`: the job file, the runner, incremental scoring, the results dataset and its ledger,
the job log."""
