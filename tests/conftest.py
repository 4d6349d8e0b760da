# jarob configures XLA's CPU backend when imported; import it before any test starts JAX.
import jarob  # noqa: F401
