#!/usr/bin/env python3
"""The small detector of `make test` (issue 13): torchvision's own FasterRCNN class with a tiny
backbone and FPN (few channels, 96 × 128 input), so the committed fixture is small but has the
graph constructs of the real detectors: the transform (normalise, bilinear Resize, Pad), FPN
nearest upsampling, RPN box decoding, TopK, NonZero, NonMaxSuppression, MultiScaleRoIAlign's
level mapping (Log, Floor, Clip, ScatterElements), RoiAlign, the box head's Gemms and the
post-processing's Softmax and NMS.

Two steps, because torch (Debian's python3-torch) and onnxruntime (the tools venv) live in
different Pythons:

    /usr/bin/python3 tools/make_tiny_detector.py export      # the .onnx and the input frame
    .cache/zoo-venv/bin/python tools/make_tiny_detector.py reference   # ONNX Runtime's outputs

writing Tests/Fixtures/detector/{tiny_fasterrcnn.onnx, input.f32, reference.json}.
"""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "detector")
HEIGHT, WIDTH = 96, 128


def export() -> None:
    from collections import OrderedDict

    import numpy as np
    import torch
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from export_detectors import frame  # noqa: E402
    from zoo_export import randomise  # noqa: E402

    class TinyBackbone(nn.Module):
        """Two stages (strides 4 and 8) and an FPN: 8 channels out."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.stage = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.fpn = FeaturePyramidNetwork([8, 16], 8)
            self.out_channels = 8

        def forward(self, x):
            a = self.stem(x)
            b = self.stage(a)
            return self.fpn(OrderedDict([("0", a), ("1", b)]))

    torch.manual_seed(0)
    anchors = AnchorGenerator(sizes=((16,), (32,)), aspect_ratios=((0.5, 1.0, 2.0),) * 2)
    model = FasterRCNN(TinyBackbone(), num_classes=None, min_size=112, max_size=160,
                       rpn_anchor_generator=anchors, box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2),
                       box_head=TwoMLPHead(8 * 7 * 7, 32), box_predictor=FastRCNNPredictor(32, 5),
                       rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=60,
                       box_score_thresh=0.05, box_detections_per_img=40)
    randomise(model, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(30)
        model.rpn.head.cls_logits.weight.mul_(5)
    model.eval()
    full = frame()  # the suite's frame, [3, 240, 336] in [0, 1]
    x = torch.nn.functional.interpolate(torch.from_numpy(full)[None], size=(HEIGHT, WIDTH), mode="bilinear",
                                        align_corners=False)[0].contiguous()
    os.makedirs(OUT, exist_ok=True)
    x.numpy().astype(np.float32).tofile(os.path.join(OUT, "input.f32"))
    path = os.path.join(OUT, "tiny_fasterrcnn.onnx")
    torch.onnx.export(model, ([x],), path, opset_version=17, input_names=["image"],
                      output_names=["boxes", "labels", "scores"], do_constant_folding=True)
    with torch.no_grad():
        result = model([x])[0]
    print(f"exported {path}: {os.path.getsize(path) / 1e3:.0f} kB; torch finds {len(result['scores'])} detections")


def reference() -> None:
    import numpy as np
    import onnxruntime as ort

    x = np.fromfile(os.path.join(OUT, "input.f32"), dtype=np.float32).reshape(3, HEIGHT, WIDTH)
    session = ort.InferenceSession(os.path.join(OUT, "tiny_fasterrcnn.onnx"), providers=["CPUExecutionProvider"])
    boxes, labels, scores = session.run(None, {"image": x})
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"input_shape": [3, HEIGHT, WIDTH], "boxes": boxes.tolist(), "labels": labels.tolist(),
                   "scores": scores.tolist()}, f)
    print(f"ONNX Runtime: {len(scores)} detections, scores {scores.min() if len(scores) else 0:.3f}…{scores.max() if len(scores) else 0:.3f}")


if __name__ == "__main__":
    {"export": export, "reference": reference}[sys.argv[1] if len(sys.argv) > 1 else "export"]()
