import os

# Tests compile many small programs: keep XLA to the machine's cores without oversubscribing.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
