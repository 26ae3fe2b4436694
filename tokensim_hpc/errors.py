"""Errors a user can act on. Local; no MPI."""


class TokenSimError(Exception):
    """Base class of errors reported to the user without a traceback."""


class ScenarioError(TokenSimError):
    """A scenario value, key, file or name is wrong; the message says what is allowed."""


class SetupError(TokenSimError):
    """The run cannot start: output path, h5py without MPI, and similar."""


class RiskInputError(TokenSimError, ValueError):
    """A risk measure's input is refused: an unknown agent id, a negative exposure..."""


class SolverError(TokenSimError, RuntimeError):
    """A linear solve did not converge; the message says what to change. ``reason``
    is PETSc's KSPConvergedReason (< 0), ``iterations`` the Krylov iterations done."""

    def __init__(self, message, reason: int = 0, iterations: int = 0):
        super().__init__(message)
        self.reason = reason
        self.iterations = iterations
