"""PyTorch model definitions used to make SelfXit's test and benchmark models.

Every factory is parameterised by width / input channels / classes so the
same topology serves both the tiny committed fixtures and the full-size
benchmark models:

    resnet18_cifar(width=64, in_ch=1, classes=10)   CIFAR-style ResNet-18
    resnet50(width=64, in_ch=3, classes=1000)       torchvision-style ResNet-50
    mobilenetv2(width_mult=1.0, classes=1000)       MobileNetV2 (ImageNet)
    mobilenet_v3ish(in_ch=3, classes=10)            op-coverage net (Hardswish, SE, ...)
    tf_same_net(in_ch=3, classes=10)                timm-style dynamic "same" padding
    branchy_net(in_ch=1, classes=10)                Inception-like parallel branches

Helpers:
    randomize(model, input_shape, seed)   deterministic random weights with
        non-trivial BatchNorm statistics that still keep activations O(1).
    export_onnx(model, path, input_shape, ...)   the one export path
        (TorchScript exporter, opset 17, input "input", dynamic batch,
        BatchNormalization kept as separate nodes).

This module has no command line; see export_test_models.py,
train_fmnist_resnet.py and ../bench/make_bench_models.py.
"""

from __future__ import annotations

import math
import inspect
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------
# ResNets
# --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision ResNet-v1.5 bottleneck (stride on the 3×3 conv)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, layers, width, in_ch, classes, cifar_stem: bool):
        super().__init__()
        self.cifar_stem = cifar_stem
        if cifar_stem:
            # 3×3 stride-1 conv, no maxpool (CIFAR / 28×28 inputs).
            self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
            self.maxpool = None
        else:
            # ImageNet stem: 7×7 stride 2 + 3×3 stride-2 maxpool.
            self.conv1 = nn.Conv2d(in_ch, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        in_planes = width
        stages = []
        for i, n in enumerate(layers):
            planes = width * (2 ** i)
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, classes)
        _kaiming_init(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        if self.cifar_stem:
            # The classic CIFAR-code flatten: exports as a Shape/Gather/
            # Unsqueeze/Concat/Reshape chain rather than a Flatten node.
            x = x.view(x.size(0), -1)
        else:
            x = torch.flatten(x, 1)
        return self.fc(x)


def resnet18_cifar(width: int = 64, in_ch: int = 1, classes: int = 10) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], width, in_ch, classes, cifar_stem=True)


def resnet50(width: int = 64, in_ch: int = 3, classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], width, in_ch, classes, cifar_stem=False)


# --------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_act(cin, cout, k, s=1, groups=1, act=nn.ReLU6, dilation=1):
    pad = (k - 1) // 2 * dilation
    layers = [nn.Conv2d(cin, cout, k, s, pad, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.Hardswish) else act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(cin, hidden, 1))                        # expand
        layers.append(_conv_bn_act(hidden, hidden, 3, stride, groups=hidden))  # depthwise
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]  # linear projection
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    CFG = [  # t, c, n, s
        [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
        [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
    ]

    def __init__(self, width_mult=1.0, classes=1000, in_ch=3, last_channel=1280, dropout=0.2):
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult))
        features = [_conv_bn_act(in_ch, cin, 3, 2)]
        for t, c, n, s in self.CFG:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(_conv_bn_act(cin, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, classes))
        _kaiming_init(self)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenetv2(width_mult: float = 1.0, classes: int = 1000, in_ch: int = 3,
                last_channel: int = 1280) -> MobileNetV2:
    """torchvision-style MobileNetV2. ``last_channel`` may be lowered for tiny fixtures."""
    return MobileNetV2(width_mult, classes, in_ch, last_channel)


# --------------------------------------------------------------------------
# Op-coverage nets
# --------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    """GAP → 1×1 conv → ReLU → 1×1 conv → Hardsigmoid → Mul."""

    def __init__(self, ch, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(ch, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, ch, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(self.fc1(s))
        s = F.hardsigmoid(self.fc2(s))
        return x * s


class MobileNetV3ish(nn.Module):
    """Small net covering MobileNetV3-era ops; ends in Softmax (output "probs")."""

    def __init__(self, in_ch=3, classes=10):
        super().__init__()
        self.stem = _conv_bn_act(in_ch, 16, 3, 2, act=nn.Hardswish)                 # Hardswish
        self.dw = _conv_bn_act(16, 16, 3, 1, groups=16, act=nn.ReLU, dilation=2)   # dilated depthwise
        self.se = SqueezeExcite(16, 8)                                               # Hardsigmoid + Mul
        self.pw = _conv_bn_act(16, 32, 1, act=nn.SiLU)                               # SiLU
        self.grouped = _conv_bn_act(32, 32, 3, 2, groups=4, act=nn.Hardswish)       # grouped conv
        self.gate = nn.Conv2d(32, 1, 1)                                              # spatial Sigmoid gate
        self.pool = nn.AvgPool2d(3, 2, padding=1)                                    # padded AvgPool
        self.head = _conv_bn_act(32, 48, 1, act=nn.Hardswish)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.se(self.dw(x))
        x = self.grouped(self.pw(x))
        x = x * torch.sigmoid(self.gate(x))
        x = self.pool(x)
        x = self.head(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        x = self.fc(self.dropout(x))
        return F.softmax(x, dim=1)


def mobilenet_v3ish(in_ch: int = 3, classes: int = 10) -> MobileNetV3ish:
    m = MobileNetV3ish(in_ch, classes)
    _kaiming_init(m)
    return m


class Conv2dSame(nn.Conv2d):
    """TensorFlow "SAME" padding computed from the runtime input size (timm pad_same)."""

    def __init__(self, cin, cout, k, stride=1, dilation=1, groups=1, bias=True):
        super().__init__(cin, cout, k, stride, 0, dilation, groups, bias)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        dh, dw = self.dilation
        ph = _same_pad(ih, kh, sh, dh)
        pw = _same_pad(iw, kw, sw, dw)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.groups)


def _same_pad(i, k, s, d):
    """max((ceil(i/s) - 1)·s + (k-1)·d + 1 - i, 0), written so the tracer records it.

    timm writes ``math.ceil`` and ``max``, which the TorchScript tracer bakes
    in as constants (the exported pads are then only right for the export
    size).  ``ceil(i/s)`` is written as ``(i + s - 1) // s``, and the clamp is
    dropped when the effective kernel is >= the stride, where the expression
    can never be negative.
    """
    pad = ((i + s - 1) // s - 1) * s + (k - 1) * d + 1 - i
    if (k - 1) * d + 1 >= s:
        return pad
    return max(pad, 0)


class TfSameNet(nn.Module):
    """Stride-2 "same" convs; a 4×4 kernel makes the padding asymmetric on odd sizes."""

    def __init__(self, in_ch=3, classes=10):
        super().__init__()
        self.c1 = Conv2dSame(in_ch, 16, 3, 2, bias=False)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = Conv2dSame(16, 32, 4, 2, bias=False)           # odd input → pads (1, 2)
        self.b2 = nn.BatchNorm2d(32)
        self.c3 = Conv2dSame(32, 32, 3, 2, dilation=2, bias=False)
        self.b3 = nn.BatchNorm2d(32)
        self.c4 = Conv2dSame(32, 64, 3, 2, bias=True)
        self.fc = nn.Linear(64, classes)
        _kaiming_init(self)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.relu(self.b2(self.c2(x)))
        x = F.relu(self.b3(self.c3(x)))
        x = F.relu(self.c4(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def tf_same_net(in_ch: int = 3, classes: int = 10) -> TfSameNet:
    return TfSameNet(in_ch, classes)


class InceptionBlock(nn.Module):
    def __init__(self, cin, c1, c3, cp):
        super().__init__()
        self.b1 = _conv_bn_act(cin, c1, 1, act=nn.ReLU)
        self.b3 = _conv_bn_act(cin, c3, 3, act=nn.ReLU)
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), _conv_bn_act(cin, cp, 1, act=nn.ReLU))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.bp(x)], dim=1)


class BranchyNet(nn.Module):
    """plain stage → Inception-like block (3 parallel branches, Concat) → plain stage."""

    def __init__(self, in_ch=1, classes=10):
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn_act(in_ch, 16, 3, act=nn.ReLU),
            _conv_bn_act(16, 32, 3, 2, act=nn.ReLU),
        )
        self.inception = InceptionBlock(32, 16, 24, 8)
        self.stage2 = nn.Sequential(
            _conv_bn_act(48, 64, 3, 2, act=nn.ReLU),
            _conv_bn_act(64, 64, 3, act=nn.ReLU),
        )
        self.fc = nn.Linear(64, classes)
        _kaiming_init(self)

    def forward(self, x):
        x = self.stage2(self.inception(self.stage1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def branchy_net(in_ch: int = 1, classes: int = 10) -> BranchyNet:
    return BranchyNet(in_ch, classes)


# --------------------------------------------------------------------------
# Initialisation and export
# --------------------------------------------------------------------------


def _kaiming_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.05)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features))
            nn.init.normal_(m.bias, 0.0, 0.05)


@torch.no_grad()
def randomize(model: nn.Module, input_shape, seed: int = 0, calib_batch: int = 8,
              logit_std: float = 2.0) -> nn.Module:
    """Give ``model`` deterministic random weights and non-trivial BN statistics.

    Convs keep their Kaiming init (re-drawn from ``seed``).  BatchNorm gets
    gamma ~ U(0.5, 1.5) and beta ~ N(0, 0.1); its running statistics are
    first calibrated on a random batch (train-mode forward with a cumulative
    average), then perturbed: mean += N(0, 0.1)·std, var *= U(0.5, 1.5).
    Activations therefore stay O(1) through any depth while a wrong or
    skipped BN fold still changes the output noticeably.  Finally the last
    Linear layer is rescaled so the logits have std ≈ ``logit_std``.
    Returns the model in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
        elif isinstance(m, nn.Linear):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(m.in_features))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
    calib = torch.randn((calib_batch, *input_shape), generator=g)
    model.train()
    model(calib)
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1 * std)
            m.running_var.mul_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.momentum = 0.1
    # Rescale the classifier so logits have std ≈ logit_std (keeps Softmax outputs non-uniform
    # and deep residual nets from producing huge logits).
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears and logit_std:
        fc, seen = linears[-1], []
        h = fc.register_forward_hook(lambda mod, inp, out: seen.append(out))
        model(calib)
        h.remove()
        scale = logit_std / max(float(seen[0].std()), 1e-6)
        fc.weight.mul_(scale)
        fc.bias.mul_(scale)
    return model


def export_onnx(model: nn.Module, path, input_shape, *, output_name: str = "logits",
                dynamic_hw: bool = False, keep_bn: bool = True, opset: int = 17) -> None:
    """Export with the TorchScript exporter (``dynamo=False``), opset 17.

    Input ``input`` (N×C×H×W, dynamic batch; also dynamic H/W when
    ``dynamic_hw``), output ``output_name`` (dynamic batch).  With
    ``keep_bn`` the model is exported in TrainingMode.PRESERVE (the model
    itself is in eval mode) so BatchNormalization stays a separate node
    (training_mode=0) instead of being folded into the preceding Conv.
    """
    model.eval()
    dummy = torch.randn(1, *input_shape)
    in_axes = {0: "batch"}
    if dynamic_hw:
        in_axes.update({2: "height", 3: "width"})
    training = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # `dynamo=False` keeps torch >= 2.5 on the TorchScript exporter; older torch (Debian's
        # python3-torch 1.13) has only that one and no such argument.
        legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(
            model, (dummy,), str(path), **legacy, opset_version=opset,
            input_names=["input"], output_names=[output_name],
            dynamic_axes={"input": in_axes, output_name: {0: "batch"}},
            training=training, do_constant_folding=True,
        )
