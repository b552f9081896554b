"""The training loop behind train-bokeh (paper section 3.5 and 4.1).

Shaped like torchvision's references/classification/train.py: one process or many
(torchrun: DistributedDataParallel + DistributedSampler), a checkpoint that is one dict
(model config and weights in our `save_checkpoint` format, plus optimizer, scheduler,
step and epoch), `--resume` that restores all of it, and only rank 0 writing files. The
model code is untouched by the loop: it calls `BokehNet.forward` and compares

- stages 1-3: `blur`, the rendered bokeh at network resolution, with the target
  average-pooled to that resolution (the network pools its input the same way);
- cpu-track: `bokeh`, the residual module's full-resolution output, with the target.

Steps count optimizer updates over the whole run. Crops and order are functions of
(seed, epoch, index), so an interrupted and resumed run sees the same batches as an
uninterrupted one, and never one twice.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from ..files import FolderNotWritable, atomic_write, ensure_writable_dir
from ..host import default_threads, tool_versions
from ..interrupt import Terminated
from .bokehnet import BokehNet
from .checkpoint import HEAD_PREFIX, CheckpointError, load_checkpoint, load_encoder_weights, load_state_strict, \
    save_checkpoint
from .config import BackboneConfig, BokehConfig, stage_config
from .distributed import Dist, ResumableSampler, all_equal, all_sum, init_distributed, shutdown
from .ebb import TrainCrops, ValPairs, upscaled
from .losses import BokehLoss, LossWeights, VGGPerceptual, psnr, ssim
from .upsample import upsample_blend
from .train_stages import PRESET, PROG

VERSIONED = ("bokehlite", "torch", "torchvision", "kornia", "numpy", "opencv-python-headless", "tqdm")
BACKBONES = {"resnext50": BackboneConfig(), "tiny": BackboneConfig.tiny()}


def backbone_name(config: BackboneConfig) -> str | dict:
    """The name of a built backbone; its full config when it is none of the named ones
    (a checkpoint from --init decides the backbone, whatever --backbone said)."""
    return next((name for name, c in BACKBONES.items() if c == config), None) or config.__dict__


class TrainError(ValueError):
    """A run that cannot start or go on for a reason the user can fix: one line, exit 2."""


# ---------------------------------------------------------------- model, freezing, init

def build_model(args: argparse.Namespace, say) -> tuple[BokehNet, dict]:
    """The stage's network: fresh (optionally with ImageNet encoder weights) or from --init.

    From --init the checkpoint's architecture (backbone, radiance width) is kept and its
    weights load strictly; the one allowed difference is the defocus head's channel
    count when stage 3 (1 channel) starts from stage 1 or 2 (6 channels), whose last
    conv is re-initialised (zero weights, bias 0.5) and reported."""
    preset = PRESET[args.stage]
    backbone = BACKBONES.get(args.backbone)
    if not args.init:
        model = BokehNet(stage_config(preset, **({"backbone": backbone} if backbone else {})))
        info = {"from": None, "encoder_weights": args.encoder_weights}
        if args.encoder_weights:
            try:
                load_encoder_weights(model, args.encoder_weights)
            except (CheckpointError, RuntimeError) as exc:
                raise TrainError(f"--encoder-weights {args.encoder_weights}: {exc}") from None
        elif model.config.backbone == BackboneConfig():
            say(f"{PROG}: warning: no --encoder-weights: the ResNeXt encoder starts from random "
                f"weights (the paper starts from ImageNet)")
        return model, info
    try:
        source = load_checkpoint(args.init)
    except CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    src = source.config
    if backbone and backbone != src.backbone:
        raise TrainError(f"--backbone {args.backbone} does not match the backbone of {args.init}")
    # A cpu-track checkpoint keeps its residual module (and design); a stage-1 one gets the
    # --residual-design asked for (default: the low-res one), starting as the identity.
    design = getattr(args, "residual_design", None) or (src.residual_design if src.residual else None)
    keep_residual = src.residual and design == src.residual_design
    residual = (dict(residual_design=src.residual_design, residual_features=src.residual_features)
                if keep_residual else dict(residual_design=design) if design else {})
    config = stage_config(preset, backbone=src.backbone, radiance=src.radiance, eta=src.eta, tau=src.tau,
                          **residual)
    head_differs = src.defocus_channels != config.defocus_channels
    if head_differs and config.defocus_channels != 1:
        raise TrainError(f"stage {args.stage} starts from a checkpoint with {config.defocus_channels} "
                         f"defocus layers (stage 1 or 2); {args.init} ({src.name}) has a "
                         f"{src.defocus_channels}-channel head")
    state = source.state_dict()
    if not config.residual or not keep_residual:
        state = {k: v for k, v in state.items() if not k.startswith("residual.")}
    model = BokehNet(config)
    try:
        replaced = load_state_strict(model, state, optional_prefix="residual." if config.residual else None,
                                     replace=(HEAD_PREFIX,) if head_differs else ())
    except CheckpointError as exc:
        raise TrainError(f"--init: {exc}") from None
    if replaced:
        # A randomly initialised head on trained features lands mostly outside D_s's [0, 1]
        # clamp, where no gradient flows (98% of pixels at 0 in our stage-1 -> stage-3 test).
        # Zero weights start it at D_s = 0.5 everywhere, inside the clamp.
        head = model.defocus_net.head[4]
        nn.init.zeros_(head.weight)
        nn.init.constant_(head.bias, 0.5)
        say(f"{PROG}: --init {args.init} ({src.name}): replaced the {src.defocus_channels}-channel "
            f"defocus head by a fresh {config.defocus_channels}-channel head starting at D_s = 0.5 "
            f"({', '.join(replaced)})")
    return model, {"from": args.init, "from_preset": src.name, "replaced_keys": replaced}


def frozen_parts(model: BokehNet, policy: str) -> dict[str, nn.Module]:
    """The modules --freeze `policy` holds fixed (no gradients, BatchNorm statistics kept)."""
    dn = model.defocus_net
    parts = {"none": {},
             "encoder": {"defocus_net.encoder": dn.encoder},
             "features": {"defocus_net.encoder": dn.encoder, "defocus_net.adapters": dn.adapters,
                          "defocus_net.fusions": dn.fusions},
             "base": {"defocus_net": dn, "radiance": model.radiance}}[policy]
    for module in parts.values():
        module.requires_grad_(False)
    return parts


def train_mode(model: nn.Module, frozen: dict[str, nn.Module]) -> None:
    model.train()
    for module in frozen.values():
        module.eval()


# ---------------------------------------------------------------- tensors and outputs

def to_images(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, 3) from the loader -> float (B, 3, H, W) in [0, 1] on `device`.

    Made contiguous: a permuted (channels-last) input would carry its layout through the
    network, and the CPU's large depthwise render convs are several times slower in it."""
    return batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def compared(out: dict, image: torch.Tensor, target: torch.Tensor,
             config: BokehConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(prediction, target, identity baseline) at the resolution the stage is judged at.

    The cpu track (residual) is judged as the runtime ships it: the Eq. 9 blend of its
    output with the photo, by its defocus map (runtime/blend.py does the same at the
    photo's resolution)."""
    if config.residual:
        return upsample_blend(image, out["bokeh"], out["defocus_map"], config.eta, config.tau), target, image
    pred = out["blur"]
    size = pred.shape[-2:]
    return pred, F.adaptive_avg_pool2d(target, size), F.adaptive_avg_pool2d(image, size)


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


class DeferSignals:
    """Hold Ctrl-C and SIGTERM while the weights are being updated, then deliver them: an
    interrupted run's last.pth never holds a half-applied step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.received = None
        if self.active:
            self.previous = {s: signal.signal(s, self._hold) for s in self.SIGNALS}
        return self

    def _hold(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        if not self.active:
            return False
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        handler = self.previous.get(self.received)
        if self.received is not None and callable(handler):
            handler(self.received, None)
        elif self.received is not None and handler == signal.SIG_DFL:
            signal.raise_signal(self.received)
        return False


def weight_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum().item() for p in model.parameters()))


# ---------------------------------------------------------------- validation

@torch.no_grad()
def validate(model: BokehNet, loader: DataLoader | None, d: Dist, amp_dtype,
             infer_net: BokehNet | None = None) -> dict | None:
    """Mean PSNR/SSIM over the validation set at the stage's resolution, with the identity
    baseline (output = input) beside it; for stage 3 also the full-resolution output of
    the `inference` preset (Eq. 9 blend). Each process takes every world-th pair."""
    if loader is None:
        return None
    model.eval()
    if infer_net is not None:
        infer_net.load_state_dict(model.state_dict())
    sums = [0.0] * 9
    for original, bokeh, ok in loader:
        if not bool(ok[0]):
            continue
        image, target = to_images(original, d.device), to_images(bokeh, d.device)
        with autocast(d.device, amp_dtype):
            out = model(image)
        pred, tgt, base = compared(out, image, target, model.config)
        values = [psnr(pred, tgt), ssim(pred, tgt), psnr(base, tgt), ssim(base, tgt)]
        if infer_net is not None:
            with autocast(d.device, amp_dtype):
                full = infer_net(image)["bokeh"]
            values += [psnr(full, target), ssim(full, target), psnr(image, target), ssim(image, target)]
        else:
            values += [torch.zeros(1)] * 4
        for i, v in enumerate(values):
            sums[i] += float(v.sum())
        sums[8] += 1
    sums = all_sum(sums, d)
    n = sums[8]
    if not n:
        return None
    result = {"val_psnr": sums[0] / n, "val_ssim": sums[1] / n,
              "identity_psnr": sums[2] / n, "identity_ssim": sums[3] / n, "val_count": int(n)}
    if infer_net is not None:
        result.update(val_psnr_full=sums[4] / n, val_ssim_full=sums[5] / n,
                      identity_psnr_full=sums[6] / n, identity_ssim_full=sums[7] / n)
    return result


# ---------------------------------------------------------------- files

class MetricsLog:
    """metrics.jsonl: one JSON object per line, appended by rank 0.

    Resuming from step N keeps the records up to N and drops later ones (written after
    the last checkpoint, or torn by a crash), so no step appears twice."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        kept = []
        if resume_step is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                # An "end" record marks a stop that this run now continues.
                if isinstance(record, dict) and record.get("step", 0) <= resume_step \
                        and record.get("type") != "end":
                    kept.append(line)
        atomic_write(path, "".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class Progress:
    """A tqdm bar (loss, images/s) on a terminal; plain lines at each log step otherwise."""

    def __init__(self, total: int, initial: int, enabled: bool):
        from tqdm import tqdm

        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True,
                        disable=not self.tty, desc=PROG)

    def step(self, loss: float, images_per_s: float | None) -> None:
        if self.tty:
            postfix = {"loss": f"{loss:.4f}"}
            if images_per_s:
                postfix["img/s"] = f"{images_per_s:.1f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)

    def log(self, line: str, always: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            if always:
                self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the run

def train(args: argparse.Namespace, data: dict, command: list[str], say=print) -> int:
    """Run (or resume) one training stage; returns the exit code. TrainError: exit 2."""
    try:
        d = init_distributed(args.device)
    except ValueError as exc:
        raise TrainError(str(exc)) from None
    threads = torch.get_num_threads()
    try:
        return Run(args, data, command, say, d).run()
    finally:
        torch.set_num_threads(threads)        # a caller in this process gets its own back
        shutdown(d)


class Run:
    def __init__(self, args, data, command, say, d: Dist):
        self.args, self.data, self.command, self.say, self.d = args, data, command, say, d
        self.out = Path(args.out)
        self.step = self.epoch = self.epoch_step = 0
        self.best: float | None = None
        self.last_val_step: int | None = None

    # -- set-up
    def setup(self) -> None:
        args, d = self.args, self.d
        torch.set_num_threads(args.threads or max(1, default_threads() // d.local_world))
        if d.main:
            try:
                ensure_writable_dir(self.out)
            except FolderNotWritable as exc:
                raise TrainError(str(exc)) from None
        self.amp_dtype = None
        if args.amp:
            if d.device.type != "cuda":
                raise TrainError("--amp needs CUDA; this run is on the CPU")
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if d.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(args.seed)

        payload = None
        if args.resume:
            try:
                payload = torch.load(self.out / "last.pth", map_location="cpu", weights_only=True)
                model = BokehNet(BokehConfig.from_dict(payload["config"]))
                load_state_strict(model, payload["state_dict"])
                self.init_info = payload["train"]["init"]
            except Exception as exc:  # a corrupt file raises many types; name it in one line
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise TrainError(f"cannot resume from {self.out / 'last.pth'}: {first}") from None
        else:
            model, self.init_info = build_model(args, self.say)
        self.model, self.config = model, model.config
        self.frozen = frozen_parts(model, args.freeze)
        model.to(d.device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise TrainError(f"--freeze {args.freeze} leaves nothing to train in the {self.config.name} model")

        weights = LossWeights(args.l1_weight, args.ssim_weight, args.vgg_weight, args.grad_weight)
        if not any((weights.l1, weights.ssim, weights.vgg, weights.grad)):
            raise TrainError("every loss weight is 0: nothing to train on")
        vgg = None
        if weights.vgg:
            try:
                vgg = VGGPerceptual.from_file(args.vgg19_weights)
            except CheckpointError as exc:
                raise TrainError(f"--vgg19-weights: {exc}") from None
        self.criterion = BokehLoss(weights, vgg).to(d.device)
        self.losses = {"weights": {"l1": weights.l1, "ssim": weights.ssim, "vgg": weights.vgg,
                                   "grad": weights.grad},
                       "perceptual": (f"on: VGG19 from {args.vgg19_weights} ({vgg.source})" if vgg
                                      else "off (--no-vgg)" if args.no_vgg else "off (--vgg-weight 0)")}

        self.train_set = TrainCrops(self.data["train"], args.crop, self.config.scale, args.seed,
                                    flip=not args.no_flip)
        self.upscaled = upscaled(self.data["train"], self.train_set.size)
        if self.upscaled:
            u = self.upscaled
            fits = int(u["largest_window_that_fits"] * self.config.scale) // 32 * 32   # --crop's multiple
            self.say(f"{PROG}: warning: {u['count']} of {u['of']} training photos are smaller than the "
                     f"{u['window']} px crop window (--crop {args.crop} at scale {self.config.scale:g}) and "
                     f"are upscaled, up to {u['largest_factor']:g}x; "
                     + (f"--crop {fits} fits them all" if fits else "no --crop fits them all at this stage"))
        self.sampler = ResumableSampler(self.train_set, d, args.seed)
        self.steps_per_epoch = self.sampler.num_samples // args.batch_size
        if self.steps_per_epoch == 0:
            raise TrainError(f"{len(self.train_set)} training pairs are fewer than one batch of "
                             f"{args.batch_size} for each of {d.world} process(es)")
        cuda = d.device.type == "cuda"
        self.loader = DataLoader(self.train_set, args.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=args.workers, pin_memory=cuda, worker_init_fn=_worker_init)
        val = self.data["val"]
        self.val_loader = None
        if val:
            shard = Subset(ValPairs(val), range(d.rank, len(val), d.world))
            self.val_loader = DataLoader(shard, batch_size=1, num_workers=min(args.workers, 4),
                                         pin_memory=cuda, worker_init_fn=_worker_init)
        self.infer_net = None
        if self.config.defocus_channels == 1 and not self.config.blend:
            c = self.config
            self.infer_net = BokehNet(stage_config("inference", backbone=c.backbone, radiance=c.radiance,
                                                   render_mode=c.render_mode, eta=c.eta, tau=c.tau))
            self.infer_net.to(d.device).eval()

        # The 1x1 stride-2 shortcut convs get weight gradients whose strides differ from DDP's
        # buckets only along size-1 dimensions: same memory order, nothing to fix.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        self.ddp = (DistributedDataParallel(model, device_ids=[d.device.index] if cuda else None)
                    if d.enabled else model)
        self.optimizer = torch.optim.Adam(trainable, lr=args.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, args.lr_step_size, args.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        if payload is not None:
            self.restore(payload)
        self.total_steps = min(args.max_steps or math.inf, args.epochs * self.steps_per_epoch)

    def restore(self, payload: dict) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["lr_scheduler"])
        if self.scaler is not None and payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.step, self.epoch, self.epoch_step = payload["step"], payload["epoch"], payload["epoch_step"]
        self.best = payload.get("best_val_psnr")
        self.last_val_step = payload.get("last_val_step")
        old_world = payload.get("world_size", self.d.world)
        if old_world != self.d.world:
            self.epoch_step = self.epoch_step * old_world // self.d.world
            self.say(f"{PROG}: warning: resuming with {self.d.world} process(es) instead of {old_world}: "
                     f"epoch {self.epoch} continues after the same share of its pairs")

    # -- records
    def run_info(self) -> dict:
        d, model = self.d, self.model
        info = {
            "command": self.command, "args": vars(self.args), "started": _now(), "status": "running",
            "versions": {"python": sys.version.split()[0], **tool_versions(VERSIONED)},
            "device": str(d.device), "world_size": d.world, "threads_per_process": torch.get_num_threads(),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
            "data": {"train_dir": self.args.data, "train_pairs": len(self.data["train"]),
                     "val_pairs": len(self.data["val"]), "validation": self.data["split"],
                     "skipped": self.data["skipped"], "upscaled": self.upscaled},
            "model": {"preset": self.config.name, "backbone": backbone_name(self.config.backbone),
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                      "freeze": self.args.freeze, "frozen": sorted(self.frozen)},
            "init": self.init_info, "losses": self.losses, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": None if math.isinf(self.total_steps) else int(self.total_steps),
        }
        if self.args.resume:
            path = self.out / "run.json"
            previous = json.loads(path.read_text()) if path.exists() else {}
            info = {**previous, **{k: info[k] for k in ("status", "versions", "device", "world_size",
                                                        "threads_per_process", "total_steps")},
                    "args": vars(self.args)}
            info["resumes"] = previous.get("resumes", []) + [
                {"command": self.command, "from_step": self.step, "at": _now()}]
        return info

    def checkpoint_extra(self) -> dict:
        args = vars(self.args)
        return {"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "step": self.step, "epoch": self.epoch, "epoch_step": self.epoch_step,
                "world_size": self.d.world, "best_val_psnr": self.best, "last_val_step": self.last_val_step,
                "losses": self.losses,
                "train": {"stage": self.args.stage, "args": args, "init": self.init_info,
                          "freeze": self.args.freeze, "frozen": sorted(self.frozen)}}

    def save(self, best: bool) -> None:
        extra = self.checkpoint_extra()
        save_checkpoint(self.model, self.out / "last.pth", **extra)
        if best:
            save_checkpoint(self.model, self.out / "best.pth", **extra)

    # -- the loop
    def validate_and_save(self) -> None:
        result = validate(self.model, self.val_loader, self.d, self.amp_dtype, self.infer_net)
        self.last_val_step = self.step
        train_mode(self.model, self.frozen)
        if not self.d.main:
            return
        if result is None:           # no validation set: best.pth is the latest
            self.save(best=True)
            return
        is_best = self.best is None or result["val_psnr"] > self.best
        if is_best:
            self.best = result["val_psnr"]
        self.metrics.write({"type": "val", "step": self.step, "epoch": self.epoch, **result, "best": is_best})
        self.save(best=is_best)
        line = (f"{PROG}: step {self.step} val PSNR {result['val_psnr']:.2f} dB SSIM {result['val_ssim']:.4f} "
                f"(identity {result['identity_psnr']:.2f} dB {result['identity_ssim']:.4f})")
        if "val_psnr_full" in result:
            line += (f"; inference preset, full size: {result['val_psnr_full']:.2f} dB "
                     f"{result['val_ssim_full']:.4f} (identity {result['identity_psnr_full']:.2f} dB)")
        self.progress.log(line + (" best" if is_best else ""), always=True)

    def train_step(self, images, targets, window: dict) -> float:
        """One update; the step is counted and added to `window` before a signal that came
        during the update is delivered."""
        d = self.d
        image, target = to_images(images, d.device), to_images(targets, d.device)
        with autocast(d.device, self.amp_dtype):
            out = self.ddp(image)
            pred, tgt, _ = compared(out, image, target, self.config)
            loss, terms = self.criterion(pred, tgt, out["defocus"], image)
        value, term_values = loss.item(), {k: v.item() for k, v in terms.items()}
        if not math.isfinite(value):
            raise TrainError(f"the loss is {value} at step {self.step + 1}; lower --lr"
                             + (" or train without --amp" if self.amp_dtype else ""))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        with DeferSignals():
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.step += 1
            self.epoch_step += 1
            window["n"] += 1
            window["loss"] += value
            window["images"] += images.shape[0] * d.world
            for k, v in term_values.items():
                window["terms"][k] = window["terms"].get(k, 0.0) + v
        return value

    def run(self) -> int:
        self.setup()
        args, d = self.args, self.d
        if self.step >= self.total_steps:
            self.say(f"{PROG}: nothing to do: {self.out}/last.pth is at step {self.step}, the end of "
                     f"this run (raise --max-steps or --epochs to go on)")
            return 0
        if d.main:
            self.metrics = MetricsLog(self.out / "metrics.jsonl", self.step if args.resume else None)
            write_json(self.out / "run.json", self.run_info())
        self.progress = Progress(int(self.total_steps), self.step, d.main)
        if args.resume:
            self.progress.log(f"{PROG}: resuming {self.out} at step {self.step} (epoch {self.epoch})", always=True)
        window = {"n": 0, "loss": 0.0, "terms": {}, "images": 0, "time": time.perf_counter()}
        status = "failed"
        try:
            while self.epoch < args.epochs and self.step < self.total_steps:
                self.sampler.set_epoch(self.epoch)
                self.sampler.skip = self.epoch_step * args.batch_size
                self.train_set.epoch = self.epoch
                train_mode(self.model, self.frozen)
                for images, targets in self.loader:
                    loss = self.train_step(images, targets, window)
                    elapsed = time.perf_counter() - window["time"]
                    self.progress.step(loss, window["images"] / elapsed if elapsed > 0 else None)
                    if self.step % args.log_every == 0 or self.step >= self.total_steps:
                        self.log_train(window)
                    if args.val_every and self.step % args.val_every == 0:
                        with _paused(window):
                            self.validate_and_save()
                    if self.step >= self.total_steps:
                        break
                if self.epoch_step >= self.steps_per_epoch:
                    self.epoch += 1
                    self.epoch_step = 0
                    self.scheduler.step()
                    with _paused(window):
                        if not args.val_every:
                            self.validate_and_save()
                        elif d.main:
                            self.save(best=False)
            if self.last_val_step != self.step:
                self.validate_and_save()
            status = "finished"
        except (KeyboardInterrupt, Terminated):
            status = "interrupted"
            # A step that completed before the signal was delivered still gets its record:
            # resume starts after it. This process's own numbers: the others may be gone.
            self.log_train(window, collective=False)
            raise
        finally:
            self.progress.close()
            if status != "finished" and d.main and self.step:
                self.save(best=False)    # the last completed step: updates are never cut in half
                print(f"{PROG}: saved {self.out / 'last.pth'} at step {self.step}; continue with "
                      f"train-bokeh --resume --out {self.out}", file=sys.stderr)
            if d.main:
                self.finish(status)
        in_sync = all_equal(weight_checksum(self.model), d)
        if d.main:
            self.metrics.write({"type": "end", "step": self.step, "epoch": self.epoch,
                                "best_val_psnr": self.best, "ranks_in_sync": in_sync, "world_size": d.world})
            best = f"best val PSNR {self.best:.2f} dB, " if self.best is not None else ""
            self.say(f"{PROG}: done at step {self.step}: {best}{self.out / 'best.pth'}")
        if not in_sync:
            raise RuntimeError("the processes' weights differ after training (DistributedDataParallel "
                               "should keep them equal)")
        return 0

    def log_train(self, window: dict, collective: bool = True) -> None:
        """One train record: the means over the window's steps (and over all processes)."""
        n = window["n"]
        if not n:
            return
        values = [window["loss"], *window["terms"].values()]
        sums, count = (all_sum(values, self.d), n * self.d.world) if collective else (values, n)
        elapsed = time.perf_counter() - window["time"]
        record = {"type": "train", "step": self.step, "epoch": self.epoch, "loss": sums[0] / count,
                  **{k: v / count for k, v in zip(window["terms"], sums[1:])},
                  "lr": self.optimizer.param_groups[0]["lr"],
                  "images_per_s": window["images"] / elapsed if elapsed > 0 else None}
        if self.d.main:
            self.metrics.write(record)
            terms = " ".join(f"{k} {record[k]:.4f}" for k in window["terms"])
            self.progress.log(f"{PROG}: step {self.step}/{int(self.total_steps)} epoch {self.epoch} "
                              f"loss {record['loss']:.4f} ({terms}) {record['images_per_s'] or 0:.1f} img/s")
        window.update(n=0, loss=0.0, terms={}, images=0, time=time.perf_counter())

    def finish(self, status: str) -> None:
        path = self.out / "run.json"
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        info.update(status=status, finished=_now(), final_step=self.step, best_val_psnr=self.best)
        write_json(path, info)


@contextlib.contextmanager
def _paused(window: dict):
    """Leave validation and checkpoint writing out of the images/s of the training window."""
    start = time.perf_counter()
    try:
        yield
    finally:
        window["time"] += time.perf_counter() - start


def _worker_init(_worker_id: int) -> None:
    """Data-loading processes decode JPEGs; one thread each, or they fight the trainer for cores."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
