"""Random-weight copy of an encoder for the GPU benchmark bundle: the model folders travel without
their weights (the device machine takes at most 64 MiB and has no network), so both systems read the
same seeded random weights, written here next to the carried config.json / tokenizer.json.

    python3 gpu_models.py MODEL_DIR     (needs torch, transformers, safetensors; no-op if weights exist)
Speed does not depend on the weight values; the same file feeds triage and PyTorch, so their
embeddings are compared too (scripts/gpu_bench.sh).
"""
import sys
from pathlib import Path


def main():
    folder = Path(sys.argv[1])
    target = folder / "model.safetensors"
    if target.exists():
        return
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig.from_pretrained(str(folder)), add_pooling_layer=False).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, str(target))
    print(f"gpu_models: wrote {len(state)} random tensors to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
