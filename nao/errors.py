"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Base class: bad input from the user (file, config, argument), not a bug in nao."""


class ArchError(UserError):
    """An architecture text or token sequence that is not valid in its search space."""


class ResultsFileError(UserError):
    """A results file that cannot be read: wrong column, bad value, bad arch, empty, conflicts."""


class UnknownSpaceError(UserError):
    """A search-space name that is not registered."""


class ModelDirError(UserError):
    """A saved controller directory that is missing or unreadable."""


class ScoreError(UserError):
    """Scores that cannot be used for training (too few, NaN, all equal)."""


class DatasetError(UserError):
    """A dataset that cannot be loaded: files missing (and not downloadable), corrupt, or a bad split."""
