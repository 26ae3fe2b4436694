"""Errors a user can act on. Local; no MPI."""


class TokenSimError(Exception):
    """Base class of errors reported to the user without a traceback."""


class ScenarioError(TokenSimError):
    """A scenario value, key, file or name is wrong; the message says what is allowed."""


class SetupError(TokenSimError):
    """The run cannot start: output path, h5py without MPI, and similar."""


class RiskInputError(TokenSimError, ValueError):
    """A risk measure's input is refused: an unknown agent id, a negative exposure..."""
