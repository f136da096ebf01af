"""The pipeline: stages declare what they read and how they run; `run_stage` owns the content key, the
per-key lock, the integrity-checked cache hit and the atomic publish; `plan` orders the stage runs."""
