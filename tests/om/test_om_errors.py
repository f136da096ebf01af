"""atc failure logs (shaped like atc's documented messages) -> error codes, plain meanings and the
unsupported op names and types."""

from __future__ import annotations

import textwrap

from converter.stages.atc.errors import parse_log

MIXED_LOG = textwrap.dedent("""\
    ATC start working now, please wait for a moment.
    [WARNING] TBE(3127,atc.bin):2024-05-11-10:12:01.123.456 [util.py:12] something harmless
    ATC run failed, Please check the detail log, Try 'atc --help' for more information
    EZ3003: 2024-05-11-10:12:03.912.001 No supported Ops kernel and engine are found for [Gather_12], optype [GatherV2].
            Possible Cause: The operator is not supported by the system. Therefore, no hit is found in any operator information library.
            Solution: 1. Check that the OPP component is installed properly. 2. Submit an issue to request for the support of this operator type.
            TraceBack (most recent call last):
            Assert ((SelectEngine(node_ptr, exclude engines, is_check_support_success, op_info)) == ge::SUCCESS) failed[FUNC:operator()][FILE:engine_place.cc][LINE:145]
    EZ0501: 2024-05-11-10:12:03.913.222 IR for Op [CustomNms_3, optype [CustomNms]], is not registered.
            Solution: Check the IR registration.
    EZ3002: 2024-05-11-10:12:03.914.000 Optype [NonMaxSuppressionV6] of Ops kernel [AIcoreEngine] is unsupported. Reason: Dynamic shape is not supported on this chip!.
    E19999: Inner Error!
            Graph run failed[FUNC:BuildGraph][FILE:graph_manager.cc][LINE:1042]
""")


def test_mixed_log_codes_in_order():
    diagnosis = parse_log(MIXED_LOG)
    assert [e.code for e in diagnosis.errors] == ["EZ3003", "EZ0501", "EZ3002", "E19999"]
    ez3002 = diagnosis.errors[2]
    assert ez3002.message.startswith("Optype [NonMaxSuppressionV6] of Ops kernel [AIcoreEngine]")  # timestamp dropped
    assert "310-class chips have no dynamic-shape kernels" in ez3002.fix


def test_mixed_log_unsupported_ops():
    ops = parse_log(MIXED_LOG).unsupported_ops
    assert [(o["name"], o["type"]) for o in ops] == [
        ("CustomNms_3", "CustomNms"), ("Gather_12", "GatherV2"), ("", "NonMaxSuppressionV6")]
    assert ops[2]["kernel"] == "AIcoreEngine"


def test_parameter_errors():
    log = textwrap.dedent("""\
        ATC run failed, Please check the detail log, Try 'atc --help' for more information
        E10001: Value [mixed_float16] for parameter [--modify_mixlist] is invalid. Reason: modify_mixlist is assigned, please ensure that precision_mode is assigned to 'allow_mix_precision'.
        E10009: Parameter [--dynamic_batch_size], [--dynamic_image_size] and [--dynamic_dims] are mutually exclusive.
        E10035: [--dynamic_batch_size] has 1 profiles, which is less than the minimum (2).
    """)
    diagnosis = parse_log(log)
    assert [e.code for e in diagnosis.errors] == ["E10001", "E10009", "E10035"]
    assert diagnosis.errors[1].meaning == ("more than one dynamic option was given (batch, image size, dims, "
                                           "shape range)")
    assert diagnosis.unsupported_ops == ()
    assert diagnosis.summary().splitlines()[2] == "E10035: too few gears (atc needs at least 2); fix: list at least two gears"


def test_ez9010_and_repeated_op_listed_once():
    log = ("EZ9010: No parser is registered for Op [my_op_1, optype [com.example::1::MyOp]].\n"
           "        No parser is registered for Op [my_op_1, optype [com.example::1::MyOp]].\n")
    diagnosis = parse_log(log)
    assert [e.code for e in diagnosis.errors] == ["EZ9010"]
    assert diagnosis.unsupported_ops == ({"name": "my_op_1", "type": "MyOp", "raw_type": "com.example::1::MyOp"},)


def test_unknown_code_still_reported():
    [error] = parse_log("E12345: something new\n").errors
    assert error.code == "E12345"
    assert error.meaning == "an atc error npuconv has no explanation for"


def test_success_log_has_no_errors():
    assert not parse_log("ATC start working now, please wait for a moment.\nATC run success, welcome to the next use.\n")


def test_codes_atc_prints_most_are_translated():
    # the codes of the CANN error catalogue users meet most (shared/reference/atc.md section 3)
    for needed in ("E10001", "E10009", "E10016", "E10056", "E19010", "EZ3002", "EZ3003", "E16005", "E20001"):
        [error] = parse_log(f"{needed}: something went wrong\n").errors
        assert error.meaning != "an atc error npuconv has no explanation for", needed
