"""Runners: one interface for every backend (`with Runner(...) as r: r.infer(feed)`)."""
