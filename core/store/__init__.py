"""Run folders on disk and atomic files. Imports nothing else of core."""
