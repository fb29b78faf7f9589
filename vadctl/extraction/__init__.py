"""Videos to feature entries: the extractor, its recipe, segments of long videos, the driver
that hands work to an executor, and what a fitted model needs extracted."""
