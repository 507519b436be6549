"""Does PEFT read the adapter zpd-wgpu wrote, and compute what zpd-wgpu computes?

Loads MODEL_DIR with transformers (float32) and ADAPTER_DIR with PeftModel.from_pretrained,
computes the logits of the token ids bench/peft-logits.mjs used, and compares them with the
logits zpd-wgpu wrote (with and without the adapter). Prints one JSON object; exits 1 when the
adapted logits differ by more than 1e-3 of the largest logit, or the adapter changed nothing.

  python3 bench/peft_check.py MODEL_DIR ADAPTER_DIR LOGITS_DIR [cuda|cpu]
"""
import json
import os
import sys

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

model_dir, adapter_dir, logits_dir = sys.argv[1:4]
device = sys.argv[4] if len(sys.argv) > 4 else ("cuda" if torch.cuda.is_available() else "cpu")
meta = json.load(open(os.path.join(logits_dir, "ids.json")))
B, T, V = meta["B"], meta["T"], meta["V"]
ids = torch.tensor(meta["ids"], dtype=torch.long).view(B, T).to(device)
ours_base = np.fromfile(os.path.join(logits_dir, "base.f32"), dtype=np.float32).reshape(B, T, V)
ours_adapted = np.fromfile(os.path.join(logits_dir, "adapted.f32"), dtype=np.float32).reshape(B, T, V)

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").to(device).eval()
with torch.no_grad():
    ref_base = base(input_ids=ids).logits.float().cpu().numpy()
peft = PeftModel.from_pretrained(base, adapter_dir).to(device).eval()
with torch.no_grad():
    ref_adapted = peft(input_ids=ids).logits.float().cpu().numpy()

scale = float(np.abs(ref_adapted).max())
d_base = float(np.abs(ours_base - ref_base).max())
d_adapted = float(np.abs(ours_adapted - ref_adapted).max())
effect = float(np.abs(ref_adapted - ref_base).max())
ok = d_adapted <= 1e-3 * scale and effect > 10 * d_adapted
print(json.dumps({
    "ok": ok, "device": device, "tokens": B * T, "vocab": V,
    "maxAbsDiffBase": d_base, "maxAbsDiffAdapted": d_adapted, "maxAbsLogit": scale,
    "adapterEffect": effect, "argmaxAgreement": float((ours_adapted.argmax(-1) == ref_adapted.argmax(-1)).mean()),
}))
sys.exit(0 if ok else 1)
