"""Pretrained networks and what loads them: local weight files, torch on CPU, RAFT, batching."""
