"""Plumbing that knows nothing of jobs: atomic writes, safe reads of files
others can plant, forked workers."""
