import os

# Two CPU cores on CI: keep XLA from oversubscribing them and hypothesis deterministic.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200)
settings.load_profile("ci")
