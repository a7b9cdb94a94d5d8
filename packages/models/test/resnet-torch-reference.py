"""PyTorch reference ResNets for resnet.test.ts: loads our weights by name and prints the logits' distance.

resnet20: akamaster/pytorch_resnet_cifar10 resnet.py (He et al. 2016, option A shortcuts);
resnet18: kuangliu/pytorch-cifar models/resnet.py (3x3 stem, no max-pool, projection shortcuts).
Module names follow ours (the classifier is `fc` here, `linear` in both repositories).

usage: python3 resnet-torch-reference.py <dir> <resnet20|resnet18>
<dir> holds layout.json ([{name, shape, offset, size}]), weights.bin (float32, our flat layout),
input.bin (float32 NHWC), eval.bin and train.bin (our logits in inference and training mode).
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, planes, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.option = option
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            if option == "A":
                pad = planes // 4
                self.pad = lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad), "constant", 0)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.needs_pad = option == "A" and (stride != 1 or cin != planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + (self.pad(x) if self.needs_pad else self.shortcut(x))
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, stem, stages, option, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        for i, (planes, blocks, stride) in enumerate(stages):
            layers = []
            for b in range(blocks):
                layers.append(Block(cin, planes, stride if b == 0 else 1, option))
                cin = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.stages = len(stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.stages):
            out = getattr(self, f"layer{i + 1}")(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


SPECS = {
    "resnet20": (16, [(16, 3, 1), (32, 3, 2), (64, 3, 2)], "A"),
    "resnet18": (64, [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], "B"),
}
SUFFIX = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def load(model, layout, flat):
    state = model.state_dict()
    for spec in layout:
        layer, kind = spec["name"].split("/")
        key = f"{layer}.{SUFFIX[kind]}"
        value = torch.from_numpy(flat[spec["offset"] : spec["offset"] + spec["size"]].reshape(spec["shape"]).copy())
        if kind == "kernel" and value.dim() == 4:
            value = value.permute(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
        elif kind == "kernel":
            value = value.t()  # [in, out] -> [out, in]
        assert state[key].shape == value.shape, (key, state[key].shape, value.shape)
        state[key] = value
    loaded = {f"{s['name'].split('/')[0]}.{SUFFIX[s['name'].split('/')[1]]}" for s in layout}
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
    assert not missing, missing
    model.load_state_dict(state)


def main():
    folder, kind = sys.argv[1], sys.argv[2]
    layout = json.load(open(f"{folder}/layout.json"))
    flat = np.fromfile(f"{folder}/weights.bin", dtype="<f4")
    stem, stages, option = SPECS[kind]
    classes = next(s["shape"][1] for s in layout if s["name"] == "fc/kernel")
    model = ResNet(stem, stages, option, classes)
    load(model, layout, flat)
    x = torch.from_numpy(np.fromfile(f"{folder}/input.bin", dtype="<f4").reshape(-1, 32, 32, 3)).permute(0, 3, 1, 2).contiguous()
    result = {}
    with torch.no_grad():
        for mode in ("eval", "train"):
            model.train(mode == "train")
            ours = np.fromfile(f"{folder}/{mode}.bin", dtype="<f4").reshape(x.shape[0], classes)
            theirs = model(x).numpy()
            result[mode] = {"max_diff": float(np.abs(ours - theirs).max()), "max_abs": float(np.abs(theirs).max())}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
