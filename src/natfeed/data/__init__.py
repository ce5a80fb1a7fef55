"""Data stages: ingest, validate (pandera schemas + great-expectations), build_kto, extract_quality."""
