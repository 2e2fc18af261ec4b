"""The state wire format's byte counts: read from a stream linfer wrote, and computed from a model's dims.

parse(data) walks a stream (docs/state-format.md: header, records, optional logits record, trailer)
and returns every part's size without decompressing anything. layer_formula(arch, dims, ...) is the
same count written down from the architecture alone (what each layer must carry, the format's framing),
so comparing the two checks linfer's output against an independent expectation.
"""

import json
import struct

RECORD_FRAMING = 4 + 4 + 8 + 8 + 8   # tag, index, raw_len, stored_len ... payload ... record_hash
HEADER_FRAMING = 8 + 4 + 4 + 8       # magic, version, body_len ... body ... header_hash
TRAILER = 4 + 4 + 8                  # tag, n_records, stream_hash
ELEM = {"f32": 4, "bf16": 2}


def parse(data):
    """{'header_bytes', 'header', 'records': [{layer, name, kind, rows, raw, stored, bytes}], 'logits': {...}|None,
    'trailer_bytes', 'total'}; raises ValueError on anything that is not one whole stream."""
    if data[:8] != b"LINFSTAT":
        raise ValueError("not a linfer state")
    version, body_len = struct.unpack_from("<II", data, 8)
    header = json.loads(data[16:16 + body_len])
    pos = 16 + body_len + 8
    out = {"header_bytes": pos, "header_body": data[16:16 + body_len], "header": header, "records": [],
           "logits": None, "version": version}
    tensors = header["tensors"]
    n_records = len(tensors) + (1 if header.get("logits", {}).get("vocab", 0) else 0)
    for i in range(n_records):
        tag, index, raw, stored = struct.unpack_from("<IIQQ", data, pos)
        if tag != 0x4345524C or index != i:
            raise ValueError(f"record {i}: bad tag or index at byte {pos}")
        rec = {"raw": raw, "stored": stored, "bytes": RECORD_FRAMING + stored}
        pos += RECORD_FRAMING + stored
        if i < len(tensors):
            t = tensors[i]
            rec.update(layer=t["layer"], name=t["name"], kind=t["kind"], rows=t["rows"], dtype=t["dtype"])
            out["records"].append(rec)
        else:
            out["logits"] = rec
    tag, n = struct.unpack_from("<II", data, pos)
    if tag != 0x444E454C or n != n_records:
        raise ValueError("bad trailer")
    out["trailer_bytes"] = TRAILER
    out["total"] = pos + TRAILER
    if out["total"] != len(data):
        raise ValueError(f"stream is {len(data)} bytes, parts add up to {out['total']}")
    return out


def layer_kinds(arch, r):
    """The mixer of each layer of the published model r (shapes.REAL[arch])."""
    L = r["layers"]
    if arch == "kimi_linear":
        return ["mla" if i + 1 in r["full_attn_layers"] else "kda" for i in range(L)]
    if arch == "qwen3_next":
        return ["attn" if (i + 1) % r["full_attention_interval"] == 0 else "gdn" for i in range(L)]
    return ["mamba2"] * L


def layer_formula(arch, r, kind):
    """(records, fixed values, values per token) that one layer of this kind puts on the wire."""
    w = r.get("conv", 4) - 1  # a causal conv of width W carries its last W-1 inputs
    if kind == "kda":
        d = r["kda_heads"] * r["kda_head_dim"]
        return 4, 3 * d * w + r["kda_heads"] * r["kda_head_dim"] ** 2, 0   # conv q, k, v + S [H, V, K]
    if kind == "mla":
        return 1, 0, r["kv_lora_rank"] + r["qk_rope"]                      # compressed latent + rope key
    if kind == "gdn":
        conv = 2 * r["k_heads"] * r["k_dim"] + r["v_heads"] * r["v_dim"]
        return 2, conv * w + r["v_heads"] * r["v_dim"] * r["k_dim"], 0     # conv (q, k, v) + S
    if kind == "attn":
        return 2, 0, 2 * r["kv_heads"] * r["head_dim"]                     # K and V rows
    if kind == "mamba2":
        d_inner = r["expand"] * r["hidden"]
        conv = d_inner + 2 * r["groups"] * r["state"]
        return 2, conv * w + d_inner * r["state"], 0                       # conv (x, B, C) + SSM [H, P, N]
    raise ValueError(kind)


def layer_bytes(arch, r, kind, n_tokens, dtype):
    """Uncompressed wire bytes of one layer: payload + record framing."""
    recs, fixed, per_token = layer_formula(arch, r, kind)
    return recs * RECORD_FRAMING + (fixed + per_token * n_tokens) * ELEM[dtype]


def full_attention_values_per_token(r):
    """K + V values per token per layer of plain multi-head attention of the model's width (every layer)."""
    return 2 * r["hidden"]


MLA_VALUES_PER_TOKEN = 512 + 64  # an MLA cache (DeepSeek-V3 / Kimi): kv_lora_rank 512 + rope key 64 per layer
