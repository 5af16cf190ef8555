"""Train a CIFAR-style ResNet-18 on Fashion-MNIST and export it to ONNX.

Makes ``<out>.onnx`` and ``<out>.json`` (test accuracy, width, input shape,
normalisation mean/std, class names).  Default: width 16 (~0.7 M params),
the model committed as ``models/fmnist-resnet18-w16.onnx``:

    python3 tools/train_fmnist_resnet.py            # ~8 min on 1 thread

The paper experiment's width-64 model (cached, not committed):

    python3 tools/train_fmnist_resnet.py --width 64 --epochs 5 \\
        --max-minutes 0 --threads 2 \\
        --out .cache/models/fmnist-resnet18-w64

Training: Adam + one-cycle LR, batch 128, no augmentation.  ``--max-minutes``
is a wall-time budget: training stops early (the LR schedule is cut short)
when it is exceeded, then the model is evaluated on the full 10k test set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402
from models import export_onnx, resnet18_cifar  # noqa: E402


def evaluate(model, x, y, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--epochs", type=float, default=2.0, help="passes over the (sub)set; fractional ok")
    p.add_argument("--train-subset", type=int, default=0, help="training images used (0 = all 60000)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--max-minutes", type=float, default=7.0, help="training wall-time budget (0 = none)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="models/fmnist-resnet18-w16", help="output path without extension")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    xtr_u8, ytr = fashion_mnist.load("train")
    xte_u8, yte = fashion_mnist.load("test")
    if args.train_subset and args.train_subset < len(xtr_u8):
        idx = rng.permutation(len(xtr_u8))[:args.train_subset]
        xtr_u8, ytr = xtr_u8[idx], ytr[idx]
    xtr = torch.from_numpy(fashion_mnist.normalize(xtr_u8))
    ytr = torch.from_numpy(ytr.astype(np.int64))
    xte = torch.from_numpy(fashion_mnist.normalize(xte_u8))
    yte = torch.from_numpy(yte.astype(np.int64))

    model = resnet18_cifar(width=args.width, in_ch=1, classes=10)
    n_params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = (len(xtr) + args.batch_size - 1) // args.batch_size
    total_steps = max(1, int(round(args.epochs * steps_per_epoch)))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total_steps, pct_start=0.25)
    print(f"width={args.width} params={n_params} train={len(xtr)} steps={total_steps} "
          f"threads={args.threads}", flush=True)

    t0 = time.time()
    step = 0
    stopped_early = False
    model.train()
    while step < total_steps and not stopped_early:
        perm = torch.from_numpy(rng.permutation(len(xtr)))
        for i in range(0, len(xtr), args.batch_size):
            if step >= total_steps:
                break
            b = perm[i:i + args.batch_size]
            loss = F.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 20 == 0:
                el = time.time() - t0
                print(f"step {step}/{total_steps} loss {loss.item():.4f} {el:.0f}s", flush=True)
            if args.max_minutes and time.time() - t0 > args.max_minutes * 60:
                print(f"time budget hit at step {step}/{total_steps}", flush=True)
                stopped_early = True
                break
    train_s = time.time() - t0

    acc = evaluate(model, xte, yte)
    print(f"test accuracy {acc:.4f} (train {train_s:.0f}s)", flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export_onnx(model, args.out + ".onnx", (1, 28, 28), output_name="logits")
    meta = {
        "test_accuracy": round(acc, 4),
        "width": args.width,
        "params": n_params,
        "input": [1, 28, 28],
        "input_name": "input",
        "output_name": "logits",
        "mean": fashion_mnist.MEAN,
        "std": fashion_mnist.STD,
        "classes": fashion_mnist.CLASSES,
        "train": {
            "images": len(xtr), "steps": step, "planned_steps": total_steps,
            "batch_size": args.batch_size, "lr": args.lr, "optimizer": "Adam+OneCycle",
            "seed": args.seed, "threads": args.threads, "seconds": round(train_s, 1),
            "torch": torch.__version__,
        },
    }
    with open(args.out + ".json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    # Sanity check: ONNX Runtime agrees with PyTorch on a few test images.
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(args.out + ".onnx", so, providers=["CPUExecutionProvider"])
        ref = model(xte[:16]).detach().numpy()
        got = sess.run(None, {"input": xte[:16].numpy()})[0]
        print(f"ORT vs torch max abs diff {np.abs(ref - got).max():.2e}", flush=True)
    except ImportError:
        pass
    print(f"wrote {args.out}.onnx ({os.path.getsize(args.out + '.onnx')} bytes) and {args.out}.json")


if __name__ == "__main__":
    main()
