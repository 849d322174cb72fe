"""One console: each thing a run says appears once, and Lightning's noise that is no news to a vaezoo
user does not appear at all.

Without this, a plain training run prints every Lightning INFO line twice (once through the handler
``import lightning`` installs, once through Hydra's root handler, which also writes the job's log file),
and shows three messages that ask nothing of the user:

* Lightning's product tips ("💡 Tip: For seamless cloud logging …", "… cloud uploads …"), adverts
  for litlogger / litmodels;
* ``isinstance(treespec, LeafSpec)`` is deprecated: PyTorch warning about Lightning's own code
  (``lightning/pytorch/utilities/_pytree.py``), on every fit and test;
* ModelCheckpoint's "Using ModelCheckpoint with manual optimization and every_n_train_steps, but no
  pre-optimization state was saved" with a code snippet: vaezoo optimises manually and saves the state
  *after* the step on purpose (its ``global_step`` counts that step, so a resume continues from it);
* the CSV logger's "Experiment logs directory … exists and is not empty. Previous log files … will be
  deleted": a job folder always holds ``.hydra/`` and ``vaezoo.log`` before the logger starts, and a
  resumed job's ``metrics.csv`` is renamed aside before (``metrics.before-resume-N.csv``), so nothing
  of the user's is deleted.

Each filter matches one exact message; every other warning and log line still shows.
"""

from __future__ import annotations

import logging
import re
import warnings

#: Beginnings of Lightning's INFO lines that advertise other products.
PRODUCT_TIPS = (
    "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]",
    "💡 Tip: For seamless cloud uploads and versioning, try installing [litmodels]",
)
#: Beginnings of warnings raised inside Lightning that say nothing about the user's run.
LIGHTNING_WARNINGS = (
    "`isinstance(treespec, LeafSpec)` is deprecated, "
    "use `isinstance(treespec, TreeSpec) and treespec.is_leaf()` instead.",
    "Using ModelCheckpoint with manual optimization and every_n_train_steps, "
    "but no pre-optimization state was saved.",
)
#: Lightning's loggers that install console handlers of their own on import.
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


class DropProductTips(logging.Filter):
    """Drops log records whose message begins with one of :data:`PRODUCT_TIPS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(PRODUCT_TIPS)


def one_console() -> None:
    """Route Lightning's log lines through the root handlers only and drop the messages listed above.

    Call it once the logging is configured (Hydra does that before the task function runs). Calling it
    again changes nothing.
    """
    drop_lightning_warnings()
    one_lightning_handler()


#: The CSV logger's warning, whose middle is the job folder's path.
CSV_FOLDER_NOT_EMPTY = (
    r"Experiment logs directory .* exists and is not empty\. Previous log files in this directory will be "
    r"deleted when the new ones are saved!"
)


def drop_lightning_warnings() -> None:
    """Ignore exactly the warnings in :data:`LIGHTNING_WARNINGS` and :data:`CSV_FOLDER_NOT_EMPTY`;
    every other warning still shows."""
    for message in LIGHTNING_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message))
    warnings.filterwarnings("ignore", message=CSV_FOLDER_NOT_EMPTY)


def one_lightning_handler() -> None:
    """Lightning's lines go to the root handlers (Hydra's console and the job's log file) only, minus
    its product tips. Without root handlers (a plain ``python`` session) Lightning keeps its own, so its
    lines are not lost."""
    import lightning.pytorch  # noqa: F401  (installs Lightning's handlers, which are removed below)

    if logging.getLogger().handlers:
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:  # Lightning's own console, not a file
                    logger.removeHandler(handler)
            logger.propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropProductTips) for f in rank_zero.filters):
        rank_zero.addFilter(DropProductTips())
