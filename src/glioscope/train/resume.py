"""A trainer's resume state: saved atomically every epoch, read back exactly, refused when it cannot be this run's."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from glioscope.errors import InputError
from glioscope.train.checkpoint import check_resume_state, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from glioscope.train.precision import Precision

log = logging.getLogger("glioscope.train.loop")  # where resumes were always logged


class Resumable:
    """The checkpoint half of glioscope.train.loop.Trainer: what `_save` writes, `_resume` restores (a variant adds
    its own through `extra_state` and `load_extra_state`)."""

    def _save(self, path: Path) -> None:
        save_checkpoint(
            path,
            model=self.raw_model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict() if self.schedule is not None else None,
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            stopper=self.stopper.state_dict(),
            epoch=self.epoch,
            history=self.history,
            best_state=self.best_state,
            best_epoch=self.best_epoch,
            precision=self.precision_record,
            rng=rng_state(),
            extra=self.extra_state(),
        )

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def _resume(self, path: Path) -> None:
        state = load_checkpoint(path)
        check_resume_state(path, state, self.settings.epochs)
        try:
            self._restore(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:  # a state of another model
            raise InputError(path, f"does not fit this run ({str(exc).splitlines()[0][:300]})") from None
        log.info("resumed %s after epoch %d", path, self.epoch)
        if self.context.is_main:
            tqdm.write(f"{self.name}: resuming from {path} after epoch {self.epoch}")

    def _restore(self, state: dict) -> None:
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None and state.get("schedule"):
            self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.stopper.load_state_dict(state["stopper"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_state, self.best_epoch = state["best_state"], state["best_epoch"]
        self.precision_record = {**state["precision"], "resumed": True}
        self.precision = Precision(state["precision"]["dtype"], state["precision"]["channels_last"])
        self._apply_precision()
        set_rng_state(state["rng"])
        self.load_extra_state(state.get("extra", {}))
