# Stands in for an environment without OpenTelemetry (tests/test_tracing.py puts this directory
# first on a worker's PYTHONPATH): every `import opentelemetry...` fails as if not installed.
raise ImportError("opentelemetry is hidden for this test")
