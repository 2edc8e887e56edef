"""Parsing ComfyUI's WebSocket messages, text and binary, as docs/WIRE.md §1.3-1.5 has them."""

from __future__ import annotations

import json
import struct

from comfyrelay.comfyui.protocol import (
    Executed,
    Executing,
    ExecutionError,
    HistoryEntry,
    Preview,
    Progress,
    Status,
    TextFrame,
    parse_message,
)


def text(kind: str, data: object) -> str:
    return json.dumps({"type": kind, "data": data})


def test_status_and_executing_null() -> None:
    status = parse_message(
        text("status", {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "abc"})
    )
    assert isinstance(status, Status) and status.queue_remaining == 2 and status.sid == "abc"
    done = parse_message(text("executing", {"node": None, "prompt_id": "p"}))
    assert isinstance(done, Executing) and done.node is None and done.prompt_id == "p"


def test_executed_progress_and_error() -> None:
    out = parse_message(
        text(
            "executed",
            {"node": "9", "prompt_id": "p", "output": {"images": [{"filename": "a.png"}]}},
        )
    )
    assert isinstance(out, Executed) and out.output["images"][0]["filename"] == "a.png"
    prog = parse_message(text("progress", {"value": 3, "max": 20, "node": "3", "prompt_id": "p"}))
    assert isinstance(prog, Progress) and (prog.value, prog.max) == (3, 20)
    err = parse_message(
        text(
            "execution_error",
            {
                "prompt_id": "p",
                "node_id": "4",
                "node_type": "ImageToMask",
                "executed": [],
                "exception_message": "boom",
                "exception_type": "RuntimeError",
                "traceback": ["x"],
                "current_inputs": {},
                "current_outputs": {},
            },
        )
    )
    assert isinstance(err, ExecutionError) and err.node_id == "4"


def test_unknown_and_malformed_messages_are_ignored() -> None:
    assert parse_message(text("crystools.monitor", {"cpu": 3})) is None
    assert parse_message("not json") is None
    assert parse_message(b"\x00\x00") is None
    assert parse_message(struct.pack(">I", 2) + b"xx") is None
    assert parse_message(struct.pack(">I", 99)) is None
    assert parse_message(struct.pack(">II", 3, 50) + b"short") is None


def test_binary_previews_and_text() -> None:
    png = b"\x89PNG fake"
    plain = parse_message(struct.pack(">II", 1, 2) + png)
    assert isinstance(plain, Preview) and plain.mime == "image/png" and plain.data == png
    meta = json.dumps(
        {"node_id": "5", "display_node_id": "5", "prompt_id": "p", "image_type": "image/jpeg"}
    ).encode()
    rich = parse_message(struct.pack(">II", 4, len(meta)) + meta + b"jpegbytes")
    assert isinstance(rich, Preview) and rich.prompt_id == "p" and rich.mime == "image/jpeg"
    assert rich.data == b"jpegbytes" and rich.node_id == "5"
    node = b"12"
    frame = parse_message(struct.pack(">II", 3, len(node)) + node + "héllo".encode())
    assert isinstance(frame, TextFrame) and frame.node_id == "12" and frame.text == "héllo"


def test_history_lists_every_output_kind_with_a_filename() -> None:
    entry = HistoryEntry.model_validate(
        {
            "outputs": {
                "9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
                "10": {
                    "gifs": [
                        {
                            "filename": "v.mp4",
                            "subfolder": "vid",
                            "type": "output",
                            "format": "video/h264-mp4",
                        }
                    ],
                    "text": ["not a file"],
                },
                "11": {"audio": [{"filename": "s.flac", "type": "temp"}], "animated": [True]},
            },
            "status": {"status_str": "success", "completed": True, "messages": []},
        }
    )
    names = sorted(f.filename for _, f in entry.files())
    assert names == ["a.png", "s.flac", "v.mp4"]


def test_output_files_say_their_kind_and_animation() -> None:
    """SaveVideo, SaveWEBM and the animated savers report under `images` with `animated`
    (0.3.44 and 0.3.64 alike); Video Helper Suite under `gifs` with a MIME `format`."""
    entry = HistoryEntry.model_validate({"outputs": {
        "5": {"images": [{"filename": "v_00001_.mp4", "subfolder": "video", "type": "output"}],
              "animated": [True]},
        "6": {"images": [{"filename": "a_00001_.png", "subfolder": "", "type": "output"}],
              "animated": [True]},
        "7": {"images": [{"filename": "still_00001_.png", "subfolder": "", "type": "output"}]},
        "8": {"audio": [{"filename": "s_00001_.flac", "subfolder": "audio", "type": "output"}]},
        "9": {"gifs": [{"filename": "c_00001.mp4", "subfolder": "", "type": "output",
                        "format": "video/h264-mp4"},
                       {"filename": "c_00002", "subfolder": "", "type": "output",
                        "format": "image/gif"}]},
        "10": {"text": ["no files here"]},
    }})
    seen = [(node, f.kind, f.animated) for node, f in entry.files()]
    assert seen == [("5", "video", True), ("6", "image", True), ("7", "image", False),
                    ("8", "audio", False), ("9", "video", True), ("9", "image", True)]


def test_history_outputs_of_any_shape_parse() -> None:
    for outputs in ({"3": ["x.png"]}, ["x.png"], {"3": {"images": "x.png"}}):
        assert HistoryEntry.model_validate({"outputs": outputs}).files() == []
