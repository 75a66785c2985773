"""Trackers: plugins on the lifecycle hooks that log runs to a tracking tool (`--track NAME`)."""
