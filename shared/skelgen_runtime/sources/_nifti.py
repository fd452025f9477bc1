"""Reading and writing NIfTI volumes (``.nii``, ``.nii.gz``) with nibabel, for the volume readers.

Values are read with ``np.asanyarray(img.dataobj)``: the file's own dtype when the header has no
scaling (``scl_slope`` unset or 1, ``scl_inter`` 0), which is the case for BraTS; scaled files give
floats. Big-endian data is returned in native byte order.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from skelgen_runtime.errors import BadExampleError
from skelgen_runtime.files import atomic_path

__all__ = [
    "NIFTI_SUFFIXES",
    "is_nifti",
    "nifti_stem",
    "read_nifti",
    "header_bytes",
    "header_from_bytes",
    "write_label_nifti",
]

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti(name: str) -> bool:
    """A NIfTI file name that is not a macOS resource fork (``._*``) or otherwise hidden."""
    return name.endswith(NIFTI_SUFFIXES) and not name.startswith(".")


def nifti_stem(name: str) -> str:
    """``BraTS2021_00000_t1.nii.gz`` -> ``BraTS2021_00000_t1``."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_nifti(path: Path) -> tuple[np.ndarray, Any]:
    """Load one NIfTI file completely.

    Returns:
        ``(data, image)``: the voxel array in NIfTI ``(i, j, k[, t])`` order and the nibabel image
        (for its header and affine).

    Raises:
        BadExampleError: the file is missing, truncated or not NIfTI (names the file).
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    if not path.is_file():
        raise BadExampleError(str(path), "file is missing")
    try:
        image = nib.load(str(path))
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise BadExampleError(str(path), f"is a {type(image).__name__}, not a NIfTI image")
        data = np.asanyarray(image.dataobj)
    except BadExampleError:
        raise
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as err:
        raise BadExampleError(str(path), f"cannot read NIfTI file ({err})") from None
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("="))
    return data, image


def header_bytes(image: Any) -> bytes:
    """The raw header block of a nibabel NIfTI image (348 bytes for NIfTI-1, 540 for NIfTI-2)."""
    return bytes(image.header.binaryblock)


def header_from_bytes(block: bytes) -> Any:
    """Inverse of :func:`header_bytes`: a ``Nifti1Header`` or ``Nifti2Header``."""
    import nibabel as nib

    klass = nib.Nifti2Header if len(block) == 540 else nib.Nifti1Header
    return klass(binaryblock=block, check=False)


def write_label_nifti(path: Path, label: np.ndarray, block: bytes, fallback_affine: np.ndarray | None = None) -> Path:
    """Write a 3D label volume (NIfTI array order, integer ids) with the header ``block`` of its case.

    The header's affine, orientation codes, units and description are kept; dimensions and the data
    type (uint8) are set from ``label``, and intensity scaling is switched off. When ``block`` is
    empty (records of non-NIfTI sources) ``fallback_affine`` is used with a fresh header.
    """
    import nibabel as nib

    label = np.asarray(label, dtype=np.uint8)
    if block:
        header = header_from_bytes(block)
        affine = header.get_best_affine()
        header = header.copy()
        header.set_data_dtype(np.uint8)
        header.set_slope_inter(None, None)
        header["cal_min"], header["cal_max"] = 0, 0
        klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = klass(label, affine, header=header)
        # keep the header's own qform/sform codes (nibabel would otherwise reset them from the affine)
        image.set_qform(header.get_qform(), code=int(header["qform_code"]))
        image.set_sform(header.get_sform(), code=int(header["sform_code"]))
    else:
        image = nib.Nifti1Image(label, np.eye(4) if fallback_affine is None else fallback_affine)
    suffix = next((s for s in NIFTI_SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{path}: a NIfTI file name must end with .nii.gz or .nii")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # nibabel picks gzip from the name: the temporary one keeps its suffixes
        nib.save(image, str(tmp))  # write: staged
    return path
