"""A tiny Piper voice built with onnx, so the Piper path runs for real (onnxruntime, espeak-ng's phonemes, the cache)
where no real voice can be downloaded.

The graph has exactly a Piper voice's inputs and output: `input` int64 [1, N] phoneme ids, `input_lengths` int64
[1], `scales` float32 [3] (noise, length, noise_w), `sid` int64 [1] only when it has several speakers, and
`output` float32 [1, 1, 1, T]. Like a real voice it starts and ends with near-silence that is not digital zero
(low noise), and its length follows the ids and the length scale: LEAD_S of noise, then a tone of HOP samples an
id (times the length scale), then TRAIL_S of noise. Its .onnx.json is a real Piper config with a Swedish
phoneme_id_map: the symbols espeak-ng uses for Swedish, with Piper's pad, start, end and punctuation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from voicecoach.coach import sentences_of
from voicecoach.engine.language import Pack
from voicecoach.engine.programme import EXERCISES
from voicecoach.engine.session import Session

SAMPLE_RATE = 22050
HOP = 256
LEAD_S = 0.15
TRAIL_S = 0.25
LEAD = round(LEAD_S * SAMPLE_RATE)
TRAIL = round(TRAIL_S * SAMPLE_RATE)
TONE = 0.5
# The near-silence around the tone: -70 dBFS, where a neural vocoder's silence lies, well under the tone.
NOISE = 3e-4
HZ = 220.0
HZ_PER_SPEAKER = 40.0
# Piper's specials (pad, start, end, word gap) and punctuation first, as its voices number them, then the IPA
# symbols (decomposed, as Piper splits them) that espeak-ng uses for Swedish.
SYMBOLS = "_^$ !'(),-.:;?" + "abdefghijklmnoprstuvwxyzæçøŋœɑɒɔɕəɛɡɧɪɭɳɵʂʃʈʉʊʏˈˌː"


def phoneme_id_map() -> dict[str, list[int]]:
    return {symbol: [n] for n, symbol in enumerate(SYMBOLS)}


def samples_for(ids: int, length_scale: float) -> int:
    """How long the model's output is for ids phoneme ids: what the tests expect of it."""
    return LEAD + math.floor(ids * length_scale * HOP) + TRAIL


def _graph(speakers: int, noise: float) -> onnx.GraphProto:
    def const(name: str, value: float | int, dtype: int = TensorProto.FLOAT) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [], [value]))

    nodes = [
        const("one_i", 1, TensorProto.INT64),
        const("zero_i", 0, TensorProto.INT64),
        const("lead", LEAD, TensorProto.INT64),
        const("trail", TRAIL, TensorProto.INT64),
        const("hop", float(HOP)),
        const("tone", TONE),
        const("noise", noise),
        const("step", 2 * math.pi * HZ / SAMPLE_RATE),
        const("noise_step", 2.3999),
        # The voiced length comes from input_lengths (not from the ids' shape), as a real voice's mask does.
        helper.make_node("Gather", ["input_lengths", "zero_i"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["n_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["scales", "one_i"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["n_f", "length_scale"], ["n_scaled"]),
        helper.make_node("Mul", ["n_scaled", "hop"], ["voiced_f"]),
        helper.make_node("Floor", ["voiced_f"], ["voiced_floor"]),
        helper.make_node("Cast", ["voiced_floor"], ["voiced"], to=TensorProto.INT64),
        helper.make_node("Add", ["lead", "voiced"], ["voice_end"]),
        helper.make_node("Add", ["voice_end", "trail"], ["total"]),
        helper.make_node("Range", ["zero_i", "total", "one_i"], ["t"]),
        helper.make_node("Cast", ["t"], ["t_f"], to=TensorProto.FLOAT),
        helper.make_node("GreaterOrEqual", ["t", "lead"], ["after_lead"]),
        helper.make_node("Less", ["t", "voice_end"], ["before_end"]),
        helper.make_node("And", ["after_lead", "before_end"], ["voiced_mask"]),
        helper.make_node("Cast", ["voiced_mask"], ["gate"], to=TensorProto.FLOAT),
        # The tone starts at phase 0 on the first voiced sample.
        helper.make_node("Cast", ["lead"], ["lead_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["t_f", "lead_f"], ["since_onset"]),
    ]
    if speakers > 1:
        nodes += [
            const("speaker_step", 2 * math.pi * HZ_PER_SPEAKER / SAMPLE_RATE),
            helper.make_node("Gather", ["sid", "zero_i"], ["speaker"], axis=0),
            helper.make_node("Cast", ["speaker"], ["speaker_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["speaker_f", "speaker_step"], ["speaker_extra"]),
            helper.make_node("Add", ["step", "speaker_extra"], ["phase_step"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["step"], ["phase_step"]))
    nodes += [
        helper.make_node("Mul", ["since_onset", "phase_step"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["sine"]),
        helper.make_node("Mul", ["sine", "tone"], ["tone_all"]),
        helper.make_node("Mul", ["tone_all", "gate"], ["voiced_tone"]),
        helper.make_node("Mul", ["t_f", "noise_step"], ["noise_phase"]),
        helper.make_node("Sin", ["noise_phase"], ["noise_wave"]),
        helper.make_node("Mul", ["noise_wave", "noise"], ["hiss"]),
        helper.make_node("Add", ["voiced_tone", "hiss"], ["audio"]),
        helper.make_node(
            "Constant",
            [],
            ["out_shape"],
            value=helper.make_tensor("out_shape", TensorProto.INT64, [4], [1, 1, 1, -1]),
        ),
        helper.make_node("Reshape", ["audio", "out_shape"], ["output"]),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    if speakers > 1:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "time"])
    return helper.make_graph(nodes, "piper-test-voice", inputs, [output])


def build_voice(voices: Path, name: str = "sv_SE-test-medium", speakers: int = 1, noise: float = NOISE) -> Path:
    """Write voices/NAME/NAME.onnx and its .onnx.json, as `voicecoach voice fetch` installs a voice; the .onnx.
    noise is the amplitude of its near-silence."""
    folder = voices / name
    folder.mkdir(parents=True, exist_ok=True)
    model = helper.make_model(_graph(speakers, noise), opset_imports=[helper.make_opsetid("", 17)])
    # The ir_version onnxruntime of the oldest supported release reads.
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    config = {
        "audio": {"sample_rate": SAMPLE_RATE, "quality": "medium"},
        "espeak": {"voice": "sv"},
        "language": {"code": "sv_SE", "family": "sv", "region": "SE"},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": phoneme_id_map(),
        "num_symbols": len(SYMBOLS),
        "num_speakers": speakers,
        "speaker_id_map": {f"speaker{n}": n for n in range(speakers)} if speakers > 1 else {},
        "piper_version": "1.0.0",
        "dataset": "voicecoach-test",
    }
    path.with_suffix(".onnx.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def programme_phrases(pack: Pack) -> set[str]:
    """What a voice must speak: everything a set of any exercise can say, and the sentences of the daemon's own
    notices (said a sentence at a time)."""
    texts = set(sentences_of(pack.cues[key] for key in ("ready", "audio_back", "failed", "restarting")))
    for exercise in EXERCISES:
        texts |= Session(exercise, pack, lambda _text: 1.0).phrases()
    return texts
