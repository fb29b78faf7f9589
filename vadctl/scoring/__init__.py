"""A fitted model over a store to tables: scoring (serial or in workers), backends (torch, ONNX),
the frames/regions/videos/events tables with their provenance, events, ONNX export."""
