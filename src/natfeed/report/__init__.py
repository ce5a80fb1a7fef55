"""What people read after a run: headline metrics for DVC, the run summary, the dataset card and its plots."""
