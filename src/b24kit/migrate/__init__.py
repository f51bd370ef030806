"""Migration of legacy project sheets into linked deals (work in progress: parsers and
sources are done; mapping, plan and run come next)."""
