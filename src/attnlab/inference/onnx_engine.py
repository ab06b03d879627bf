"""The ONNX Runtime engine of the Predictor: the classifier exported once to ONNX, its transformer
blocks fused by ONNX Runtime's transformer optimizer, run by an ORT CPU session.

What it does, in order:

1. export the (merged, fp32) model with ``torch.onnx.export`` (eager attention, dynamic batch and
   sequence axes) into a temporary folder;
2. for BERT-family models, fuse with ``onnxruntime.transformers.optimizer`` (one ``Attention`` op
   per layer, ``EmbedLayerNormalization``, ``SkipLayerNormalization``, ``BiasGelu``): fewer, larger
   kernels, which is where a small encoder spends its time on a CPU;
3. optionally (``quantize="int8"``) quantize the weights of the MatMuls to int8 per channel
   (``onnxruntime.quantization.quantize_dynamic``; activations are quantized on the fly);
4. check the session against the torch model on a padded probe batch: an optimized graph whose
   logits differ is dropped for the plain export (and the plain export must match, or it is an
   error). int8 is checked for finite outputs only: it changes logits by design.

The session holds the graph in memory, so the temporary folder is gone once the engine is built.
``benchmarks/infer_speed.py`` measures it against the torch engine and ``transformers.pipeline``
(docs/speed.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnlab.errors import UserError
from attnlab.inference.predictor import has_4bit_layers

log = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# model types whose graphs ORT's BERT fusions understand (others still get ORT's generic fusions)
BERT_LIKE = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "mpnet"}
PROBE_TEXTS = ["a quietly moving film , beautifully acted and never dull .", "dull ."]
HEAD_NODE_MARKERS = ("/classifier", "/pooler/", "/score", "/pre_classifier")  # in exported node names
QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention")
LOGIT_TOLERANCE = 1e-3  # max |logit difference| that counts as the same model (fp32 fusions differ ~1e-5)


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Drop log records below ERROR while ONNX Runtime's Python tools run, whatever loggers they use."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def require_onnxruntime() -> Any:
    try:
        import onnx  # noqa: F401  (the exporter and the optimizer need it)
        import onnxruntime
    except ImportError:
        raise UserError("ONNX Runtime is not installed", where="engine='onnxruntime'",
                        fix="pip install 'attnlab[onnx]' (or use the torch engine)") from None
    return onnxruntime


def model_inputs(model: torch.nn.Module, tokenizer: Any) -> list[str]:
    """The tokenizer outputs the model's forward accepts, in a fixed order."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    produced = set(getattr(tokenizer, "model_input_names", INPUT_NAMES))
    return [n for n in INPUT_NAMES if n in accepted and n in produced]


def export_onnx(model: torch.nn.Module, tokenizer: Any, path: str | Path, *, optimize: bool = True,
                keep_plain: bool = False) -> dict[str, Any]:
    """Write ``model`` (a sequence classifier, CPU fp32) to ``path`` as ONNX; fuse it where ORT can.

    The model is switched to eager attention (the pattern ORT fuses). Returns what was done: input
    names, whether the fused graph was written, the fused operator counts and, with ``keep_plain``,
    the path of the unfused export kept beside it (``<name>.plain.onnx``)."""
    require_onnxruntime()
    path = Path(path)
    names = model_inputs(model, tokenizer)
    probe = tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")
    if hasattr(model, "set_attn_implementation") and model.config._attn_implementation != "eager":
        model.set_attn_implementation("eager")  # exports as plain MatMul/Softmax, the pattern ORT fuses
    model = model.float().cpu().eval()
    plain = path.with_name(path.stem + ".plain.onnx")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (), str(plain), kwargs={k: probe[k] for k in names}, input_names=names,
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "batch", 1: "sequence"} for k in names} | {"logits": {0: "batch"}})
    info: dict[str, Any] = {"inputs": names, "fused": False, "fused_operators": {}}
    model_type = getattr(model.config, "model_type", "")
    if optimize and model_type in BERT_LIKE:
        from onnxruntime.transformers import optimizer

        heads = getattr(model.config, "num_attention_heads", 0)
        hidden = getattr(model.config, "hidden_size", 0)
        with quiet_logging():  # the optimizer logs every fusion at INFO on its own module loggers
            fused = optimizer.optimize_model(str(plain), model_type="bert", num_heads=heads, hidden_size=hidden,
                                             opt_level=0)
            info["fused_operators"] = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
            fused.save_model_to_file(str(path))
        info["fused"] = True
        if keep_plain:
            info["plain_path"] = str(plain)
        else:
            plain.unlink()
    else:
        os.replace(plain, path)
    return info


def quantize_onnx_int8(src: Path, dst: Path) -> int:
    """int8 weights per output channel for the MatMuls and fused attention ops of the encoder
    (activations quantized per batch on the fly); the pooler and classification head stay fp32, as
    in the torch int8 path. Returns the number of quantized ops."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    head = [n.name for n in onnx.load(str(src)).graph.node if any(k in n.name for k in HEAD_NODE_MARKERS)]
    head += [f"{name}_MatMul" for name in head]  # the quantizer first rewrites a Gemm as <name>_MatMul + Add
    with quiet_logging(), warnings.catch_warnings():  # the quantizer logs advice on the root logger
        warnings.simplefilter("ignore")
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul", "Attention"], per_channel=True,
                         weight_type=QuantType.QInt8, nodes_to_exclude=head,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})  # fused ops lack inferred types
    return sum(n.op_type in QUANTIZED_OPS for n in onnx.load(str(dst)).graph.node)


class OnnxEngine:
    """Logits of a sequence classifier through an ONNX Runtime session built from the torch model."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, quantize: str | None = None,
                 num_threads: int | None = None):
        ort = require_onnxruntime()
        if getattr(model, "peft_config", None) is not None:
            raise UserError("the ONNX engine needs a plain model, got an unmerged PEFT model",
                            where="engine='onnxruntime'", fix="load the run merged (the default)")
        if has_4bit_layers(model):
            raise UserError("the ONNX engine cannot export a 4-bit (bitsandbytes) model",
                            where="engine='onnxruntime'", fix="load the run merged (the default)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        probe = tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")
        with torch.no_grad():
            expected = model.float().cpu().eval()(**{k: v for k, v in probe.items() if k in INPUT_NAMES}).logits
        expected = expected.numpy()

        def session(p: Path) -> Any:
            return ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])

        with tempfile.TemporaryDirectory(prefix="attnlab-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                self.info = export_onnx(model, tokenizer, path, keep_plain=True)
            except (RuntimeError, ValueError, TypeError, torch.onnx.errors.OnnxExporterError) as exc:
                raise UserError(f"could not export the model to ONNX: {str(exc).splitlines()[0][:200]}",
                                where="engine='onnxruntime'", fix="use the torch engine for this model") from None
            self.input_names = self.info["inputs"]
            candidates = [path] + ([Path(self.info["plain_path"])] if self.info["fused"] else [])
            for p in candidates:
                sess = session(p)
                diff = float(np.abs(self._run(sess, probe) - expected).max())
                if diff <= LOGIT_TOLERANCE:
                    break
                log.warning("ONNX graph %s differs from the torch model (max |logit diff| %.2g)", p.name, diff)
            else:
                raise UserError(f"the ONNX export does not reproduce the model (max |logit diff| {diff:.2g})",
                                where="engine='onnxruntime'", fix="use the torch engine for this model")
            self.info["fused"] = p == path and self.info["fused"]
            self.info.pop("plain_path", None)  # a temporary file, gone with the folder
            self.info["max_logit_diff"] = diff
            if quantize == "int8":
                q = Path(tmp) / "model.int8.onnx"
                self.info["quantized_ops"] = quantize_onnx_int8(p, q)
                sess = session(q)
                if not np.isfinite(self._run(sess, probe)).all():
                    raise UserError("int8 ONNX model gives non-finite logits", where="quantize='int8'",
                                    fix="use quantize=None")
            self.session = sess

    def _run(self, sess: Any, batch: dict[str, Any]) -> np.ndarray:
        ids = batch["input_ids"]
        feed = {}
        for k in self.input_names:
            v = batch.get(k)
            if v is None:  # e.g. no token_type_ids from this tokenizer: BERT's default segment 0
                v = torch.zeros_like(ids) if k == "token_type_ids" else torch.ones_like(ids)
            feed[k] = (v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)).astype(np.int64, copy=False)
        return sess.run(["logits"], feed)[0]

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, num_labels) fp32 logits for a padded batch of ``input_ids``/``attention_mask``/..."""
        return torch.from_numpy(self._run(self.session, batch))
