"""Bad-input cases: data files and checkpoints that carry code, and image folders whose links repeat files.

Every payload, when unpickled, writes ``<job copy>/UNPICKLED_MARKER``; the catalogue checks that the
marker was never written, i.e. that nothing ran. Each refusal must name the file and say
"this file carries code or objects vaezoo does not load" and what the file calls, in vaezoo's words
(never torch's advice to rerun with ``weights_only=False``: tests/test_data_trust.py checks that).
The evaluate case runs this module as ``python -m vaezoo.evaluate`` (see its end).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.bad_input_case import MARKER, ON_CPU, Case
from tests.standins import class_images, write_cifar10, write_folder

CARRIES = "carries code or objects vaezoo does not load"


class Payload:
    """Unpickling this calls ``os.system`` (torch names it ``posix.system``) to write the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ExecPayload(Payload):
    """Unpickling this calls ``exec`` to write the marker: a second gadget, from builtins."""

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


# --- CIFAR-10's official batches are pickles -------------------------------------------------------------
def cifar10_with(name: str, payload_type: type[Payload]) -> Callable[[Path, Path], None]:
    def prepare(job: Path, data: Path) -> None:
        write_cifar10(data)
        (data / "cifar-10-batches-py" / name).write_bytes(
            pickle.dumps({"data": payload_type(job / MARKER), "labels": [1]})
        )

    return prepare


CIFAR = ["dataset=cifar10", "dataset.download=false", "dataset.val_size=8", *ON_CPU]


# --- array files ----------------------------------------------------------------------------------
def npy_object_array(job: Path, data: Path) -> None:
    np.save(data / "images.npy", np.array([Payload(job / MARKER), 1], dtype=object), allow_pickle=True)


def npz_with_object_labels(job: Path, data: Path) -> None:
    labels = np.array([Payload(job / MARKER)] * 10, dtype=object)
    np.savez(data / "images.npz", images=np.zeros((10, 8, 8), np.uint8), labels=labels)


def binarized_npz_with_object_split(job: Path, data: Path) -> None:
    folder = data / "binarized_mnist"
    folder.mkdir()
    plain = np.zeros((10, 784), np.uint8)
    objects = np.array([Payload(job / MARKER)] * 10, dtype=object)
    np.savez(folder / "binarized_mnist.npz", train=objects, valid=plain, test=plain)


def pt_with_payload(job: Path, data: Path) -> None:
    import torch

    images = torch.zeros(10, 8, 8, dtype=torch.uint8)
    torch.save({"images": images, "x": Payload(job / MARKER)}, data / "a.pt")


def pt_with_numpy_inside(job: Path, data: Path) -> None:
    import torch

    torch.save({"images": np.zeros((10, 8, 8), np.uint8)}, data / "a.pt")


def npz_member_that_is_a_pickle(job: Path, data: Path) -> None:
    with zipfile.ZipFile(data / "images.npz", "w") as archive:
        archive.writestr("images.npy", pickle.dumps(Payload(job / MARKER)))


# --- checkpoints ----------------------------------------------------------------------------------------
def every_checkpoint_calls_system(job: Path, data: Path) -> None:
    """Each checkpoint keeps its weights and gains an ``os.system`` call, as a crafted job folder would."""
    import torch

    for path in (job / "checkpoints").glob("*.ckpt"):
        state = torch.load(path, weights_only=True)
        state["callbacks"]["evil"] = Payload(job / MARKER)
        torch.save(state, path)


def last_checkpoint_is_a_raw_pickle(job: Path, data: Path) -> None:
    (job / "checkpoints" / "last.ckpt").write_bytes(pickle.dumps({"evil": Payload(job / MARKER)}))


# --- image folders with links ---------------------------------------------------------------------
def folder_with_a_class_that_links_to_another(job: Path, data: Path) -> None:
    images, labels = class_images(6, size=8)
    write_folder(data / "pets", images[labels == 0], labels[labels == 0])  # cats/ only
    os.symlink("cats", data / "pets" / "dogs")  # dogs/ is cats/ again: the same images, another label


def split_folders_whose_test_links_to_train(job: Path, data: Path) -> None:
    images, labels = class_images(6, size=8)
    write_folder(data / "pets" / "train", images, labels)
    os.symlink("train", data / "pets" / "test")  # test images that are the training images


IMAGE_FOLDER = ["dataset=image_folder", "dataset.path={data}/pets", *ON_CPU]

CASES = [
    Case(
        "data-cifar10-batch-calls-system",
        CIFAR,
        (CARRIES, "data_batch_2", "posix.system", "download it again"),
        prepare=cifar10_with("data_batch_2", Payload),
    ),
    Case(
        "data-cifar10-meta-calls-exec",
        CIFAR,
        (CARRIES, "batches.meta", "exec", "download it again"),
        prepare=cifar10_with("batches.meta", ExecPayload),
    ),
    Case(
        "data-npy-object-array",
        ["dataset=arrays", "dataset.path={data}/images.npy", *ON_CPU],
        (CARRIES, "images.npy", "numpy.save"),
        prepare=npy_object_array,
    ),
    Case(
        "data-npz-object-labels",
        ["dataset=arrays", "dataset.path={data}/images.npz", *ON_CPU],
        (CARRIES, "images.npz", "numpy.savez"),
        prepare=npz_with_object_labels,
    ),
    Case(
        "data-npz-member-is-a-pickle",
        ["dataset=arrays", "dataset.path={data}/images.npz", *ON_CPU],
        ("images.npz", "not a .npy array", "numpy.savez"),
        prepare=npz_member_that_is_a_pickle,
    ),
    Case(
        "data-binarized-npz-object-split",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        (CARRIES, "binarized_mnist.npz", "delete"),
        prepare=binarized_npz_with_object_split,
    ),
    Case(
        "data-pt-calls-system",
        ["dataset=arrays", "dataset.path={data}/a.pt", *ON_CPU],
        (CARRIES, "a.pt", "posix.system", "plain tensors with torch.save"),
        prepare=pt_with_payload,
    ),
    Case(
        "data-pt-holds-numpy",
        ["dataset=arrays", "dataset.path={data}/a.pt", *ON_CPU],
        (CARRIES, "a.pt", "_reconstruct", "plain tensors with torch.save"),
        prepare=pt_with_numpy_inside,
    ),
    Case(
        "ckpt-calls-system-resume",
        ["resume={copy}"],
        (CARRIES, "last.ckpt", "posix.system", "load only checkpoints written by vaezoo"),
        prepare=every_checkpoint_calls_system,
    ),
    Case(
        "ckpt-calls-system-evaluate",
        ["run={copy}"],
        (CARRIES, ".ckpt", "posix.system", "load only checkpoints written by vaezoo"),
        prepare=every_checkpoint_calls_system,
        module="tests.cases_data",  # python -m vaezoo.evaluate, see the end of this file
    ),
    Case(
        "ckpt-raw-pickle-resume",
        ["resume={copy}"],
        (CARRIES, "last.ckpt", "posix.system, in a plain pickle"),
        prepare=last_checkpoint_is_a_raw_pickle,
    ),
    Case(
        "image-folder-class-links-to-another",
        IMAGE_FOLDER,
        ("dogs holds only images already listed", "remove the link"),
        prepare=folder_with_a_class_that_links_to_another,
    ),
    Case(
        "image-folder-test-links-to-train",
        IMAGE_FOLDER,
        ("holds only images already listed", "remove the link"),
        prepare=split_folders_whose_test_links_to_train,
    ),
]


if __name__ == "__main__":
    # ``python -m tests.cases_data ARGS`` is ``python -m vaezoo.evaluate ARGS`` as the catalogue calls it:
    # the catalogue's paths.data= becomes evaluate's data_root=, and its paths.runs= the folder of
    # evaluate's log (by design <job>/evaluation/evaluate.log, written before the checkpoint is read),
    # so the catalogue's check that the job folder is unchanged is about what evaluate does with it.
    import sys

    from vaezoo.stages.evaluate import main

    def evaluate_arg(arg: str) -> str:
        key, _, value = arg.partition("=")
        return {"paths.data": f"data_root={value}", "paths.runs": f"hydra.run.dir={value}/evaluation"}.get(
            key, arg
        )

    sys.argv[1:] = [evaluate_arg(arg) for arg in sys.argv[1:]]
    main()
