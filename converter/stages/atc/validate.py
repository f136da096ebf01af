"""Every atc combination rule, checked before atc starts. A broken rule raises `RecipeError` whose
message starts with `om rule <id>:`; a legal but doubtful choice becomes a warning string."""

from __future__ import annotations

from dataclasses import dataclass, field

from converter import ascend as opt
from converter.errors import RecipeError
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig

DEFAULT_PRECISION_WARNING = (
    "om: no precision chosen: atc will compile this fp32 model in FP16 (its default precision_mode_v2=fp16); "
    "set om.precision_mode_v2: origin to keep fp32 accuracy, or om.precision_mode_v2: fp16 to make fp16 explicit"
)


def rule_error(rule: str, message: str, hint: str) -> RecipeError:
    """A RecipeError that names the broken rule."""
    return RecipeError(f"om rule {rule}: {message}", hint=hint)


@dataclass(frozen=True)
class DynamicPlan:
    """The gear option atc gets (None for a static build), the input axes it makes `-1`, and each gear as
    the static input shapes atc compiles it with (`{input: shape}` per gear, in gear order)."""

    option: str | None = None
    value: str = ""
    axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    gears: tuple[dict[str, tuple[int, ...]], ...] = ()


def check_config(recipe: Recipe, cfg: OmConfig) -> tuple[list[str], DynamicPlan]:
    """Rules that need only the recipe. Returns warnings and the dynamic plan; raises on a broken rule."""
    warnings: list[str] = []
    warnings += _check_soc(cfg)
    warnings += _check_precision(cfg)
    _check_implmode(cfg)
    warnings += _check_cann(cfg)
    dynamic = _check_dynamic(recipe, cfg)
    _check_aipp(recipe, cfg)
    _check_extra_args(cfg)
    if "input_hint_shape" in cfg.extra_args and dynamic.option:
        raise rule_error("hint-shape-with-gears", f"extra_args.input_hint_shape cannot be combined with --{dynamic.option} "
                         "(atc E10001)", "drop input_hint_shape, or om.dynamic")
    return warnings, dynamic


def check_variants(om: OmConfig | list[OmConfig]) -> None:
    """A list of builds needs a unique `variant` name on each."""
    if not isinstance(om, list):
        return
    names = [o.variant for o in om]
    if any(n is None for n in names) and len(om) > 1:
        raise rule_error("variant-names", "om is a list, so every build needs a `variant` name",
                         "add e.g. `variant: 310p_origin` to each item of om")
    dup = sorted({n for n in names if n is not None and names.count(n) > 1})
    if dup:
        raise rule_error("variant-names", f"variant names repeat: {dup}", "give each build its own variant name")


def check_against_onnx(recipe: Recipe, cfg: OmConfig, dynamic: DynamicPlan, inputs: dict[str, list], opset: int,
                       node_names: frozenset[str]) -> list[str]:
    """Rules that need the ONNX atc will read: input names, gear dims, opset range, keep_dtype names."""
    warnings: list[str] = []
    missing = [spec.name for spec in recipe.inputs if spec.name not in inputs]
    if missing:
        raise rule_error("input-names", f"recipe input(s) {missing} are not inputs of the ONNX (it has {sorted(inputs)})",
                         "rename `inputs:` entries to the ONNX input names; atc fails with E10016 otherwise")
    for name, axes in dynamic.axes.items():
        shape = inputs[name]
        symbolic = tuple(i for i, d in enumerate(shape) if not isinstance(d, int) or d <= 0)
        if symbolic != tuple(sorted(axes)):
            raise rule_error("dynamic-onnx-dims", f"input {name} of the ONNX has dynamic axes {list(symbolic)}, "
                             f"the gears need exactly {sorted(axes)}", "rebuild the ONNX with --force")
    (low, high), release = opt.opset_range(cfg.cann_version)
    if not low <= opset <= high:
        key = opt.cann_key(cfg.cann_version)
        raise rule_error("opset-range", f"the ONNX has ai.onnx opset {opset}, CANN {release or key} atc parses opset "
                         f"{low}..{high}" + ("" if release == key else f" (om.cann_version {cfg.cann_version} checked "
                                                                       f"as CANN {release})"),
                         f"set onnx.max_opset: {high} in the recipe: the onnx stage then lowers the ONNX to opset {high} "
                         f"(paddle2onnx may write a higher opset than onnx.opset asks)")
    unknown = [n for n in cfg.keep_dtype if not n.startswith("OpType::") and n not in node_names]
    if unknown:
        warnings.append(f"om.keep_dtype names {unknown} are not node names of the ONNX; atc will ignore them "
                        "(use OpType::X for op types)")
    return warnings


def _check_soc(cfg: OmConfig) -> list[str]:
    soc = cfg.soc_version
    if opt.is_known_soc(soc):
        return []
    family = opt.soc_family(soc)
    looks = f"; it looks like an Ascend {family} chip" if family else ""
    if cfg.allow_unknown_soc:
        return [f"om.soc_version {soc!r} is not in npuconv's SoC table (let through by om.allow_unknown_soc){looks}; "
                "atc will refuse it if your CANN does not know the chip"]
    close = opt.closest_socs(soc)
    known = close or opt.known_socs()
    raise rule_error("soc-version", f"om.soc_version {soc!r} is not a SoC npuconv knows; "
                     + (f"closest known: {', '.join(close)}" if close else f"known: {', '.join(known)}"),
                     "use `Ascend` + the Name `npu-smi info` prints (e.g. Ascend310P3); for a chip newer than "
                     "npuconv's table set om.allow_unknown_soc: true")


def _check_precision(cfg: OmConfig) -> list[str]:
    warnings: list[str] = []
    if cfg.precision_mode and cfg.precision_mode_v2:
        raise rule_error("precision-exclusive", "precision_mode and precision_mode_v2 are both set (atc E10056)",
                         "keep one; precision_mode_v2 is the current option")
    mode = cfg.precision_mode_v2 or cfg.precision_mode
    if mode is None:
        warnings.append(DEFAULT_PRECISION_WARNING)
    family = opt.soc_family(cfg.soc_version)
    if mode in opt.BF16_MODES and family not in opt.BF16_FAMILIES:
        raise rule_error("soc-precision", f"{mode} needs bfloat16, which {cfg.soc_version} does not have "
                         "(Atlas A2/A3/950 only: Ascend910B*, Ascend910_93*, Ascend950*)",
                         "use mixed_float16 (or origin) on this chip")
    if mode in opt.HIF8_MODES and family not in opt.HIF8_FAMILIES:
        raise rule_error("soc-precision", f"{mode} needs HiFloat8, which {cfg.soc_version} does not have "
                         "(Ascend 950PR/950DT only)", "use mixed_float16 (or origin) on this chip")
    if cfg.modify_mixlist is not None and mode not in opt.MIXED_MODES:
        raise rule_error("mixlist-needs-mixed-mode",
                         f"modify_mixlist only applies to a mixed precision mode, not {mode or 'the default fp16'} (atc E10001)",
                         "set precision_mode_v2: mixed_float16 (or mixed_bfloat16), or drop modify_mixlist")
    if cfg.keep_dtype and mode in opt.ORIGIN_MODES:
        warnings.append(f"om.keep_dtype has no effect with {mode}: every op already keeps its original dtype")
    return warnings


def _check_implmode(cfg: OmConfig) -> None:
    if cfg.optypelist_for_implmode and cfg.op_select_implmode not in opt.IMPLMODES_WITH_LIST:
        raise rule_error("implmode-optypelist",
                         f"optypelist_for_implmode needs op_select_implmode high_precision or high_performance "
                         f"(got {cfg.op_select_implmode})", "set op_select_implmode: high_precision")


def _check_cann(cfg: OmConfig) -> list[str]:
    if cfg.cann_version is None:
        return []
    key = opt.cann_key(cfg.cann_version)
    release = opt.cann_release(cfg.cann_version)
    if release is None:
        raise rule_error("cann-version", f"om.cann_version {cfg.cann_version!r} is older than every CANN release "
                         f"npuconv knows ({', '.join(opt.known_canns())})",
                         "set om.cann_version to the CANN the build server runs (`npuconv doctor` prints it)")
    for option, since in opt.OPTION_SINCE.items():
        if getattr(cfg, option, None) is not None and opt.version_tuple(key) < opt.version_tuple(since):
            raise rule_error("cann-option", f"--{option} needs CANN {since} or newer, om.cann_version is {cfg.cann_version}",
                             "use the legacy precision_mode on this CANN, or raise om.cann_version")
    if release != key:
        low, high = opt.OPSET_RANGES[release]
        return [f"om.cann_version {cfg.cann_version!r} is not in npuconv's table; using the nearest lower "
                f"known release, CANN {release} (opset {low}..{high})"]
    return []


def _gears(profiles: list[tuple[int, ...]], what: str) -> None:
    if not opt.MIN_GEARS <= len(profiles) <= opt.MAX_GEARS:
        raise rule_error("dynamic-gear-count", f"{what} has {len(profiles)} gear(s); atc needs "
                         f"{opt.MIN_GEARS}..{opt.MAX_GEARS} (E10035/E10036)",
                         "list at least two gears, or drop `dynamic` for a static build")
    bad = [list(p) for p in profiles if any(v <= 0 for v in p)]
    if bad:
        raise rule_error("dynamic-gear-positive", f"{what} has dims <= 0: {bad} (E10038)", "every gear dim must be >= 1")
    seen = [p for i, p in enumerate(profiles) if p in profiles[:i]]
    if seen:
        raise rule_error("dynamic-gear-duplicate", f"{what} repeats gears {[list(p) for p in seen]} (E10039)",
                         "list each gear once")


def _check_dynamic(recipe: Recipe, cfg: OmConfig) -> DynamicPlan:
    dyn = cfg.dynamic
    if dyn is None:
        return DynamicPlan()
    chosen = [k for k in ("batch", "image_size", "dims") if getattr(dyn, k) is not None]
    if len(chosen) > 1:
        raise rule_error("dynamic-one-option", f"om.dynamic sets {' and '.join(chosen)}; atc takes only one of "
                         "--dynamic_batch_size, --dynamic_image_size, --dynamic_dims (E10009)", "keep one of them")
    if not chosen:
        raise rule_error("dynamic-one-option", "om.dynamic sets none of batch, image_size, dims",
                         "set one of them, or remove om.dynamic for a static build")
    if dyn.axes is not None and chosen[0] != "dims":
        raise rule_error("dynamic-axes", "om.dynamic.axes only applies to dims (batch uses axis 0, image_size axes 2,3)",
                         "remove om.dynamic.axes")
    shapes = recipe.input_shapes()
    if chosen[0] == "batch":
        profiles = [(v,) for v in dyn.batch or []]
        _gears(profiles, "om.dynamic.batch")
        axes = {name: (0,) for name in shapes}
        return DynamicPlan("dynamic_batch_size", ",".join(str(v) for v in dyn.batch or []), axes,
                           opt.gear_shapes(shapes, axes, profiles))
    if chosen[0] == "image_size":
        if cfg.input_format != "NCHW":
            raise rule_error("dynamic-image-size-format", f"dynamic image_size needs input_format NCHW, not {cfg.input_format}",
                             "set om.input_format: NCHW, or use dynamic.dims with ND")
        profiles = [tuple(p) for p in dyn.image_size or []]
        wrong = [list(p) for p in profiles if len(p) != 2]
        if wrong:
            raise rule_error("dynamic-profile-length", f"om.dynamic.image_size profiles must be [h, w], got {wrong} (E10020)",
                             "write e.g. image_size: [[48, 320], [48, 640]]")
        _gears(profiles, "om.dynamic.image_size")
        axes = {name: (2, 3) for name, shape in shapes.items() if len(shape) == 4}
        if not axes:
            raise rule_error("dynamic-axes", "dynamic image_size needs a 4-D NCHW input; the recipe has none",
                             "use dynamic.dims with explicit axes")
        return DynamicPlan("dynamic_image_size", ";".join(f"{h},{w}" for h, w in profiles), axes,
                           opt.gear_shapes(shapes, axes, profiles))
    if cfg.input_format != "ND":
        raise rule_error("dynamic-dims-needs-nd", f"--dynamic_dims needs input_format ND, not {cfg.input_format}",
                         "set om.input_format: ND")
    if cfg.aipp is not None:
        raise rule_error("dynamic-dims-no-aipp", "--dynamic_dims cannot be combined with AIPP (atc E10001)",
                         "remove om.aipp, or use dynamic batch / image_size")
    if not dyn.axes:
        raise rule_error("dynamic-axes", "om.dynamic.dims needs om.dynamic.axes: the axes of each input the values fill",
                         "e.g. axes: {x: [3]} with dims: [[320], [640]]")
    axes: dict[str, tuple[int, ...]] = {}
    for name, ax in dyn.axes.items():
        if name not in shapes:
            raise rule_error("dynamic-axes", f"om.dynamic.axes names input {name!r}, the recipe inputs are {sorted(shapes)}",
                             "use a name from `inputs:`")
        rank = len(shapes[name])
        if len(set(ax)) != len(ax) or any(not 0 <= a < rank for a in ax):
            raise rule_error("dynamic-axes", f"om.dynamic.axes.{name} = {ax}: axes must be distinct and in 0..{rank - 1}",
                             "list each axis of the input once")
        axes[name] = tuple(sorted(ax))
    count = sum(len(a) for a in axes.values())
    profiles = [tuple(p) for p in dyn.dims or []]
    wrong = [list(p) for p in profiles if len(p) != count]
    if wrong:
        raise rule_error("dynamic-profile-length", f"om.dynamic.dims profiles need {count} value(s) (one per axis in "
                         f"om.dynamic.axes), got {wrong} (E10037)", "one value per dynamic axis, in axes order")
    _gears(profiles, "om.dynamic.dims")
    return DynamicPlan("dynamic_dims", ";".join(",".join(str(v) for v in p) for p in profiles), axes,
                       opt.gear_shapes(shapes, axes, profiles, spread=True))


def _check_aipp(recipe: Recipe, cfg: OmConfig) -> None:
    aipp = cfg.aipp
    if aipp is None:
        return
    if recipe.preprocess is None:
        raise rule_error("aipp-needs-preprocess", "om.aipp takes mean/std/scale/channel order from `preprocess:`, "
                         "which the recipe lacks", "add a preprocess: section (mean, std, scale, channel_order)")
    name = aipp.input or recipe.inputs[0].name
    shapes = recipe.input_shapes()
    if name not in shapes:
        raise rule_error("aipp-input", f"om.aipp.input {name!r} is not a recipe input ({sorted(shapes)})",
                         "name the image input")
    shape = shapes[name]
    channels = 1 if aipp.input_format == "YUV400_U8" else 3
    if cfg.input_format != "NCHW" or len(shape) != 4 or shape[1] != channels:
        raise rule_error("aipp-input", f"AIPP {aipp.input_format} feeds a {channels}-channel NCHW input; "
                         f"{name} is {shape} with input_format {cfg.input_format}", "use AIPP only on the image input")


def _check_extra_args(cfg: OmConfig) -> None:
    import difflib

    for key, value in cfg.extra_args.items():
        if key in opt.MANAGED_OPTIONS:
            raise rule_error("extra-args-managed", f"om.extra_args.{key} duplicates a recipe key npuconv writes itself",
                             "set it through its om key (README: The om: section), not extra_args")
        if key not in opt.EXTRA_OPTIONS:
            guess = difflib.get_close_matches(key, list(opt.EXTRA_OPTIONS), n=1)
            raise rule_error("extra-args-unknown", f"om.extra_args.{key} is not an atc option npuconv knows"
                             + (f" (did you mean {guess[0]!r}?)" if guess else ""),
                             f"allowed: {', '.join(sorted(opt.EXTRA_OPTIONS))}")
        text = render_value(value)
        allowed = opt.EXTRA_OPTIONS[key]
        if not text or any(c in text for c in "\n\r\0") or text != text.strip():
            raise rule_error("extra-args-value", f"om.extra_args.{key} = {value!r} is not a single --key=value token",
                             "use a non-empty value without newlines or surrounding spaces")
        if allowed is not None and text not in allowed:
            raise rule_error("extra-args-value", f"om.extra_args.{key} = {text!r}; atc accepts {', '.join(allowed)}",
                             "pick one of the listed values")


def render_value(value: object) -> str:
    """An extra_args value as atc spells it (booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
