"""The PyTorch peer of `zpd-wgpu bench`: the same LoRA training step as bench/model.ts.

A Llama model (random frozen weights, tied embeddings), LoRA on q, k, v, o, gate, up and down,
every token a target, mean cross-entropy, torch autograd, clip_grad_norm_ and torch.optim.AdamW
(weight decay 0), eager mode. Attention is F.scaled_dot_product_attention (causal) where this
torch has it, else the textbook softmax(q·kᵀ)·v. One JSON object on stdout.

  python3 torch_step.py '{"config": {...}, "B": 8, "T": 128, "r": 8, "alpha": 16, "steps": 3,
                          "lr": 1e-3, "maxGradNorm": 1.0, "device": "cpu", "dtype": "float32",
                          "threads": 2}'

dtype "bfloat16" runs the forward under torch.autocast (LoRA parameters stay float32).
Run by `zpd-wgpu bench` (which sets OMP_WAIT_POLICY=PASSIVE before torch is imported).
"""
import json
import math
import os
import sys
import time

args = json.loads(sys.argv[1])
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

cfg = args["config"]
dev = torch.device(args["device"])
if args.get("threads"):
    torch.set_num_threads(int(args["threads"]))
torch.manual_seed(0)
C, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
Hq, Hkv, D, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["vocab_size"]
eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
B, T, r, alpha = args["B"], args["T"], args["r"], args["alpha"]
scale = alpha / r
N = B * T


def w(*shape):
    return (torch.rand(*shape, device=dev) - 0.5) * 0.1


embed = w(V, C)
layers = []
shapes = {"q": (Hq * D, C), "k": (Hkv * D, C), "v": (Hkv * D, C), "o": (C, Hq * D), "gate": (I, C), "up": (I, C), "down": (C, I)}
params = []
for _ in range(L):
    lay = {"in_norm": torch.ones(C, device=dev), "post_norm": torch.ones(C, device=dev)}
    for m, (o, i) in shapes.items():
        A = torch.nn.Parameter(torch.randn(r, i, device=dev) / math.sqrt(i))
        Bm = torch.nn.Parameter(torch.randn(o, r, device=dev) * 0.01)
        lay[m] = (w(o, i), A, Bm)
        params += [A, Bm]
    layers.append(lay)
final_norm = torch.ones(C, device=dev)
inv = 1.0 / theta ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D)
ang = torch.outer(torch.arange(T, device=dev, dtype=torch.float32), inv)
ang = torch.cat([ang, ang], -1)
cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
ids = torch.randint(0, V, (B, T + 1), device=dev)
inputs, targets = ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)
sdpa = hasattr(F, "scaled_dot_product_attention")
causal = torch.full((T, T), float("-inf"), device=dev).triu(1)


def rms(x, wt):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * wt


def lin(x, p):
    W, A, Bm = p
    return x @ W.t() + scale * ((x @ A.t()) @ Bm.t())


def rope(x):
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def forward_loss():
    x = embed[inputs]
    for lay in layers:
        xn = rms(x, lay["in_norm"])
        q = rope(lin(xn, lay["q"]).view(B, T, Hq, D)).transpose(1, 2)
        k = rope(lin(xn, lay["k"]).view(B, T, Hkv, D)).transpose(1, 2)
        v = lin(xn, lay["v"]).view(B, T, Hkv, D).transpose(1, 2)
        if Hq != Hkv:
            k, v = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)
        if sdpa:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + causal, -1) @ v
        x = x + lin(a.transpose(1, 2).reshape(N, Hq * D), lay["o"])
        xn = rms(x, lay["post_norm"])
        x = x + lin(F.silu(lin(xn, lay["gate"])) * lin(xn, lay["up"]), lay["down"])
    logits = rms(x, final_norm) @ embed.t()
    return F.cross_entropy(logits.float(), targets)


opt = torch.optim.AdamW(params, lr=args["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
cuda = dev.type == "cuda"
amp = args.get("dtype") == "bfloat16"


def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        loss = forward_loss()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, args["maxGradNorm"])
    opt.step()
    return loss.item()  # waits for the device


losses = [step() for _ in range(2 if cuda else 1)]
if cuda:
    torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(args["steps"]):
    losses.append(step())
step_ms = (time.perf_counter() - t0) / args["steps"] * 1000
with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
    forward_loss().item()
    t0 = time.perf_counter()
    for _ in range(args["steps"]):
        forward_loss().item()
    score_ms = (time.perf_counter() - t0) / args["steps"] * 1000
# what bounds the step on this device: an f32 1024³ matmul, best of 3
a, b = torch.randn(1024, 1024, device=dev), torch.randn(1024, 1024, device=dev)
best = float("inf")
for _ in range(4):
    t0 = time.perf_counter()
    (a @ b.t()).sum().item()
    best = min(best, time.perf_counter() - t0)
print(json.dumps({
    "matmulGflops": 2 * 1024**3 / best / 1e9,
    "stepMs": step_ms, "scoreMs": score_ms, "losses": losses, "torch": torch.__version__,
    "device": torch.cuda.get_device_name(dev) if cuda else "cpu", "threads": torch.get_num_threads(),
    "dtype": "bfloat16 autocast" if amp else "float32", "attention": "sdpa" if sdpa else "softmax(q·kᵀ)·v",
    "peakBytes": torch.cuda.max_memory_allocated(dev) if cuda else None,
    "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
}))
