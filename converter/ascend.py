"""Ascend facts, one fact in one place: SoC names and their capabilities, precision-mode classes, gear
limits and how atc fills a gear profile into the input shapes, the ONNX opset range per CANN version, and
the atc options `extra_args` may set. Base layer: pure data and lookups, no recipe types; the om stage
and lint read it, recipe code may.

Sources: CANN Graph Engine `api/atc/main_impl.cc` and `compiler/api/aclgrph/option_utils.cc`; the
hiascend.com ATC parameter pages (precision_mode/_v2, keep_dtype, modify_mixlist, dynamic gears); the
"ONNX operator specification" page of each CANN release for the opset range."""

from __future__ import annotations

import difflib
import re

FRAMEWORK_ONNX = "5"
SUCCESS_MARKER = "ATC run success"
FAILURE_MARKER = "ATC run failed"

# Gear counts atc accepts: more than one profile, at most 100 (E10035 / E10036).
MIN_GEARS = 2
MAX_GEARS = 100

# SoC families. Exact names seen in CANN sources and docs. A name not listed here is refused (closest known
# names suggested) unless om.allow_unknown_soc lets a chip newer than this table through; the family
# patterns then still give its capabilities (bf16, hif8, static-only).
SOC_FAMILIES: dict[str, tuple[str, ...]] = {
    "310": ("Ascend310",),
    "310P": ("Ascend310P1", "Ascend310P3", "Ascend310P5", "Ascend310P7"),
    "310B": ("Ascend310B1", "Ascend310B2", "Ascend310B3", "Ascend310B4"),
    "910": ("Ascend910A", "Ascend910B", "Ascend910ProA", "Ascend910ProB", "Ascend910PremiumA"),
    "910B": ("Ascend910B1", "Ascend910B2", "Ascend910B2C", "Ascend910B3", "Ascend910B4", "Ascend910B4-1"),
    "910_93": ("Ascend910_9391", "Ascend910_9392", "Ascend910_9381", "Ascend910_9382", "Ascend910_9372",
               "Ascend910_9362"),
    "950": (),
}
_FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("310P", r"^Ascend310P\d+$"),
    ("310B", r"^Ascend310B\d+$"),
    ("910B", r"^Ascend910B\d+\w*$"),
    ("910_93", r"^Ascend910_93\d+$"),
    ("950", r"^Ascend950"),
)
STATIC_ONLY_FAMILIES = frozenset({"310", "310P", "310B"})  # "310-class": no dynamic-shape kernels
BF16_FAMILIES = frozenset({"910B", "910_93", "950"})  # Atlas A2 / A3 / 950
HIF8_FAMILIES = frozenset({"950"})  # Ascend 950PR / 950DT

BF16_MODES = frozenset({"mixed_bfloat16", "allow_mix_precision_bf16", "allow_fp32_to_bf16"})
HIF8_MODES = frozenset({"cube_hif8", "mixed_hif8"})
MIXED_MODES = frozenset({
    "mixed_float16", "mixed_bfloat16", "mixed_hif8",
    "allow_mix_precision", "allow_mix_precision_fp16", "allow_mix_precision_bf16",
})
ORIGIN_MODES = frozenset({"origin", "must_keep_origin_dtype"})
IMPLMODES_WITH_LIST = frozenset({"high_precision", "high_performance"})

# ai.onnx opset range atc parses, per CANN major.minor ("Opset version v9~v13" in 5.0.x/6.0.x docs,
# "v9~v18" from 7.0 on; 8.x documents per-operator versions on top of ONNX 1.12 and the 7.0 range).
OPSET_RANGES: dict[str, tuple[int, int]] = {
    "5.0": (9, 13), "5.1": (9, 13), "6.0": (9, 13),
    "7.0": (9, 18), "8.0": (9, 18), "8.1": (9, 18), "8.2": (9, 18), "8.3": (9, 18), "8.5": (9, 18),
}
DEFAULT_CANN = "8.0"

# Options that appeared in a given CANN release (major.minor); older releases reject them.
OPTION_SINCE: dict[str, str] = {"precision_mode_v2": "7.0"}

# Options npuconv writes itself from recipe keys: extra_args may not set them.
MANAGED_OPTIONS = frozenset({
    "model", "framework", "output", "soc_version", "input_format", "input_shape", "input_shape_range",
    "dynamic_batch_size", "dynamic_image_size", "dynamic_dims", "precision_mode", "precision_mode_v2",
    "keep_dtype", "modify_mixlist", "op_select_implmode", "optypelist_for_implmode", "insert_op_conf",
    "host_env_os", "host_env_cpu", "mode",
})

# Other atc options extra_args may set, with their allowed values (None: free-form value).
EXTRA_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "log": ("debug", "info", "warning", "error", "null"),
    "out_nodes": None,
    "output_type": None,
    "input_fp16_nodes": None,
    "is_input_adjust_hw_layout": None,
    "is_output_adjust_hw_layout": None,
    "customize_dtypes": None,
    "op_precision_mode": None,
    "fusion_switch_file": None,
    "enable_small_channel": ("0", "1"),
    "op_compiler_cache_mode": ("disable", "enable", "force"),
    "op_compiler_cache_dir": None,
    "external_weight": ("0", "1", "2"),
    "disable_reuse_memory": ("0", "1"),
    "buffer_optimize": ("l2_optimize", "off_optimize"),
    "op_debug_level": ("0", "1", "2", "3", "4"),
    "debug_dir": None,
    "status_check": ("0", "1"),
    "deterministic": ("0", "1"),
    "oo_level": ("O1", "O3"),
    "input_hint_shape": None,
    "allow_hf32": ("true", "false"),
    "enable_single_stream": ("true", "false"),
    "compression_optimize_conf": None,
    "shape_generalized_build_mode": ("shape_generalized", "shape_precise"),
    "dump_mode": ("0", "1"),
}


def soc_family(soc: str) -> str | None:
    """The family of a SoC name (`310P`, `910B`, ...), or None when the name is not recognised."""
    for family, names in SOC_FAMILIES.items():
        if soc in names:
            return family
    for family, pattern in _FAMILY_PATTERNS:
        if re.match(pattern, soc):
            return family
    return None


def is_known_soc(soc: str) -> bool:
    """True for a SoC name listed exactly in SOC_FAMILIES."""
    return any(soc in names for names in SOC_FAMILIES.values())


def known_socs() -> list[str]:
    """Every exact SoC name npuconv knows, in family order."""
    return [name for names in SOC_FAMILIES.values() for name in names]


def gear_shapes(shapes: dict[str, list[int]], axes: dict[str, tuple[int, ...]], profiles: list[tuple[int, ...]],
                *, spread: bool = False) -> tuple[dict[str, tuple[int, ...]], ...]:
    """Each gear as the static input shapes atc compiles it with. Batch and image_size profiles apply whole
    to every input they concern; a dims profile (`spread`) fills the `-1`s of --input_shape in order:
    inputs in recipe order, each input's dynamic axes ascending."""
    gears = []
    for profile in profiles:
        values = iter(profile)
        gear = {}
        for name, shape in shapes.items():
            if not spread:
                values = iter(profile)
            dims = list(shape)
            for axis in sorted(axes.get(name, ())):
                dims[axis] = next(values)
            gear[name] = tuple(dims)
        gears.append(gear)
    return tuple(gears)


def closest_socs(value: str, limit: int = 3) -> list[str]:
    """The known SoC names nearest to `value` (case and a missing `Ascend` prefix forgiven), best first;
    chips of the family the name looks like (Ascend910B9: 910B) before the others; [] when none is close."""
    names = known_socs()
    cased = value.strip() if value.strip().lower().startswith("ascend") else "Ascend" + value.strip()
    wanted = cased.lower()
    exact = [s for s in names if s.lower() == wanted]
    if exact:
        return exact
    family = SOC_FAMILIES.get(soc_family(cased) or "", ())
    scored = [(s in family, difflib.SequenceMatcher(None, wanted, s.lower()).ratio(), i, s) for i, s in enumerate(names)]
    ranked = sorted(scored, key=lambda t: (not t[0], -t[1], t[2]))
    return [s for _, score, _, s in ranked if score >= 0.75][:limit]


def cann_key(version: str | None) -> str:
    """`8.0.RC2` -> `8.0`; None -> the default CANN release."""
    if not version:
        return DEFAULT_CANN
    match = re.match(r"^(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else version


def known_canns() -> list[str]:
    """The CANN releases (major.minor) in the opset table, oldest first."""
    return sorted(OPSET_RANGES, key=version_tuple)


def cann_release(version: str | None) -> str | None:
    """The table release that stands for `version`: itself when listed, else the nearest lower one
    (`6.3.RC1` -> `6.0`); None when the version is older than every known release. None -> the default."""
    key = cann_key(version)
    if key in OPSET_RANGES:
        return key
    wanted = version_tuple(key)
    lower = [k for k in known_canns() if version_tuple(k) <= wanted]
    return lower[-1] if lower else None


def opset_range(cann_version: str | None) -> tuple[tuple[int, int], str | None]:
    """(min, max) ai.onnx opset atc parses for this CANN version, and the table release that range comes
    from (None when the version is older than every known release; the range is then the oldest one's)."""
    release = cann_release(cann_version)
    return OPSET_RANGES[release or known_canns()[0]], release


def cann_matches(wanted: str, installed: str) -> bool:
    """True when the installed CANN version is `wanted` at the precision `wanted` gives: `8.0` matches
    `8.0.RC2`, `8.0.RC2` does not match `8.0.RC3` (case-insensitive, part by part)."""
    want = [p.lower() for p in wanted.split(".")]
    have = [p.lower() for p in installed.split(".")]
    return have[:len(want)] == want


def version_tuple(key: str) -> tuple[int, ...]:
    """`8.0` -> (8, 0) for comparisons."""
    return tuple(int(p) for p in re.findall(r"\d+", key)[:2])
