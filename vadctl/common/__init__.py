"""Shared by every stage: value types (specs), argument checks, parameters, plug-in registries,
progress events, atomic writes, fault points for kill tests, thread caps."""
