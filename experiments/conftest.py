"""Experiments run as tests: `pytest experiments/ [--chaos-runtime local|docker]`.

The `chaos_stack` fixture (from the chaos pytest plugin) uses the stack that is already up
if it matches the runtime and profile, or starts one for the session and takes it down.
"""
