"""jarob: JAX-native robust cooperative multi-agent reinforcement learning."""

__version__ = "0.1.0"
