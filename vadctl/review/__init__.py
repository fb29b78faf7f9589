"""What people read after a run: metrics, plots, events from results, thumbnails, annotated videos."""
