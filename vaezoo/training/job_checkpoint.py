"""The job's checkpoint callback: every checkpoint carries the job's id, and the paths a checkpoint
stores (best, last, top-k) are read back inside the job's own ``checkpoints/`` folder.

Lightning keeps the absolute path of the best checkpoint in ``last.ckpt`` and, when the folder has
moved, reloads that path alone; so a moved runs folder tested a file that was no longer there, and a
crafted ``last.ckpt`` could make a resumed job test (and report) another job's checkpoint. Here a
stored path is a hint: only its file name is kept, looked up in this job's folder.
:func:`vaezoo.jobs.resume.check_own_checkpoints` refuses, before anything is written, a resume whose
checkpoints are missing from the folder or were written by another job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

# The key under which a checkpoint records the id of the job that wrote it (run.json's wandb_id).
JOB_ID_KEY = "vaezoo_job_id"


def in_folder(folder: str | Path, stored: str | None) -> str | None:
    """``stored`` (an absolute path from any machine or folder) as the same file name in ``folder``."""
    if not stored:
        return stored
    return str(Path(folder) / Path(stored).name)


class JobCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that stamps the job id and reads stored paths inside its own folder."""

    def __init__(self, *args: Any, job_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_id = job_id

    @property
    def state_key(self) -> str:
        # The same key as Lightning's ModelCheckpoint, so checkpoints of older jobs restore into it.
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        if self.job_id is not None:
            checkpoint[JOB_ID_KEY] = self.job_id

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        folder = self.dirpath
        state = dict(state_dict)
        state["dirpath"] = folder
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                state[key] = in_folder(folder, state[key])
        if "best_k_models" in state:
            state["best_k_models"] = {in_folder(folder, k): v for k, v in state["best_k_models"].items()}
        super().load_state_dict(state)
