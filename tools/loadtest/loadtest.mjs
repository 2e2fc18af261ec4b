// Load generator for `linfer serve`: C concurrent streaming clients, each sending requests back to
// back until R requests are done, over /v1/completions with stream=true. Node 20, no packages.
//
//   node tools/loadtest/loadtest.mjs --url http://127.0.0.1:8080 --concurrency 64 --requests 128 \
//        --max-tokens 64 [--prompt-tokens 32..256] [--api-key K] [--json out.json]
//
// Metrics follow vLLM's benchmarks/serve definitions (the ones SGLang's bench_serving also uses):
//   TTFT  time from sending a request to its first streamed token;
//   ITL   time between consecutive streamed chunks of one request (each chunk: >= 1 token);
//   TPOT  (end-to-end latency - TTFT) / (output tokens - 1), per request;
//   E2E   time from sending to the last byte;
//   output tokens/s = all output tokens / wall time of the whole run (first send to last byte).
// Percentiles are nearest-rank. A request fails on a non-200 status, a broken stream, a missing
// [DONE], or a token count different from usage.completion_tokens.

import { writeFileSync } from "node:fs";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const url = arg("--url", "http://127.0.0.1:8080");
const concurrency = Number(arg("--concurrency", "8"));
const requests = Number(arg("--requests", String(2 * concurrency)));
const maxTokens = Number(arg("--max-tokens", "64"));
const [promptMin, promptMax] = arg("--prompt-tokens", "32..256").split("..").map(Number);
const apiKey = arg("--api-key", "");
const jsonOut = arg("--json", "");
const vocabHint = Number(arg("--vocab", "4000"));  // prompts are token ids below this

// Deterministic prompts of varied length (ids in [10, vocabHint)): the same run asks the same.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
function promptIds(i) {
  const n = promptMin + Math.floor(rand() * (promptMax - promptMin + 1));
  return Array.from({ length: n }, (_, k) => 10 + ((i * 7919 + k * 104729) % (vocabHint - 10)));
}

async function one(i) {
  const body = {
    prompt: promptIds(i), max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true }, return_token_ids: true,
  };
  const headers = { "content-type": "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const t0 = performance.now();
  const r = { ok: false, ttft: 0, e2e: 0, itl: [], tokens: 0, prompt: body.prompt.length, error: "" };
  try {
    const res = await fetch(`${url}/v1/completions`, { method: "POST", headers, body: JSON.stringify(body) });
    if (res.status !== 200) {
      r.error = `status ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return r;
    }
    const decoder = new TextDecoder();
    let buf = "";
    let last = 0;
    let done = false;
    let usage = null;
    for await (const bytes of res.body) {
      buf += decoder.decode(bytes, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") {
          done = true;
          continue;
        }
        const chunk = JSON.parse(data);
        if (chunk.usage) usage = chunk.usage;
        const n = (chunk.choices ?? []).reduce((s, c) => s + (c.token_ids?.length ?? 0), 0);
        if (n === 0) continue;
        const now = performance.now();
        if (r.tokens === 0) r.ttft = now - t0;
        else r.itl.push(now - last);
        last = now;
        r.tokens += n;
      }
    }
    r.e2e = performance.now() - t0;
    if (!done) r.error = "stream ended without [DONE]";
    else if (!usage || usage.completion_tokens !== r.tokens) r.error = `usage ${usage?.completion_tokens} != ${r.tokens} streamed`;
    else if (r.tokens !== maxTokens) r.error = `${r.tokens} tokens, asked for ${maxTokens}`;
    else r.ok = true;
  } catch (e) {
    r.error = String(e?.cause ?? e);
  }
  return r;
}

const pct = (xs, p) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const stats = (xs) => ({ mean: mean(xs), p50: pct(xs, 50), p99: pct(xs, 99) });

const results = [];
let next = 0;
const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < requests) results.push(await one(next++));
}));
const wall = (performance.now() - start) / 1000;

const good = results.filter((r) => r.ok);
const out = {
  concurrency, requests, max_tokens: maxTokens, failed: results.length - good.length,
  errors: [...new Set(results.filter((r) => !r.ok).map((r) => r.error))].slice(0, 5),
  wall_s: wall,
  output_tokens_per_s: good.reduce((s, r) => s + r.tokens, 0) / wall,
  ttft_ms: stats(good.map((r) => r.ttft)),
  tpot_ms: stats(good.filter((r) => r.tokens > 1).map((r) => (r.e2e - r.ttft) / (r.tokens - 1))),
  itl_ms: stats(good.flatMap((r) => r.itl)),
  e2e_ms: stats(good.map((r) => r.e2e)),
};
const f = (s) => `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)}`;
console.log(`c=${concurrency} requests=${requests} failed=${out.failed} wall=${wall.toFixed(1)} s ` +
  `out=${out.output_tokens_per_s.toFixed(1)} tok/s  TTFT p50/p99 ${f(out.ttft_ms)} ms  ` +
  `TPOT ${f(out.tpot_ms)} ms  ITL ${f(out.itl_ms)} ms`);
for (const e of out.errors) console.log(`  error: ${e}`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(out, null, 1));
process.exit(out.failed ? 1 : 0);
