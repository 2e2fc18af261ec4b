// linfer serve, driven by the official `openai` npm client: what an application sees.
//   node openai_client.mjs --base-url http://127.0.0.1:PORT/v1 [--api-key KEY] [--chat]
// Exits 0 when every check passed; prints one line per check.

import assert from "node:assert/strict";
import OpenAI from "openai";

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const baseURL = arg("--base-url");
const apiKey = arg("--api-key", "unused");
const withChat = process.argv.includes("--chat");
if (!baseURL) {
  console.error("usage: node openai_client.mjs --base-url URL [--api-key KEY] [--chat]");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

let model;
check("models.list names the served model", async () => {
  const list = await client.models.list();
  assert.ok(list.data.length >= 1);
  model = list.data[0].id;
  assert.equal(typeof model, "string");
});

const prompt = "ROMEO:";
let greedyText;
check("completions: greedy, exact usage, token ids", async () => {
  const r = await client.completions.create({
    model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true,
  });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.finish_reason, "length");
  assert.equal(c.token_ids.length, 12);
  assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.prompt_tokens, r.prompt_token_ids.length);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  greedyText = c.text;
  assert.ok(greedyText.length > 0);
});

check("completions: streaming equals the whole answer, usage in the last chunk", async () => {
  const stream = await client.completions.create({
    model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, greedyText);
  assert.equal(finish, "length");
  assert.ok(usage, "stream_options.include_usage gives a usage chunk");
  assert.equal(usage.completion_tokens, 12);
});

check("completions: prompt as token ids gives the same text", async () => {
  const ids = (await client.completions.create({
    model, prompt, max_tokens: 1, temperature: 0, return_token_ids: true,
  })).prompt_token_ids;
  const r = await client.completions.create({
    model, prompt: ids, max_tokens: 12, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.choices[0].text, greedyText);
});

check("completions: n = 3 with a seed gives three choices, reproducibly", async () => {
  const ask = () => client.completions.create({
    model, prompt, max_tokens: 8, temperature: 1.0, top_p: 0.9, seed: 1234, n: 3, ignore_eos: true,
  });
  const a = await ask();
  const b = await ask();
  assert.deepEqual(a.choices.map((c) => c.index).sort(), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
  assert.equal(a.usage.completion_tokens, 24);
});

check("completions: a stop string ends the text before it", async () => {
  const stop = greedyText.slice(3, 5);
  const r = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].text, greedyText.slice(0, greedyText.indexOf(stop)));
});

check("errors: an unknown model is a 4xx APIError with a message", async () => {
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt, max_tokens: 2 }),
    (e) => e instanceof OpenAI.APIError && e.status >= 400 && e.status < 500 && e.message.length > 0,
  );
});

if (withChat) {
  const messages = [
    { role: "system", content: "You are a player." },
    { role: "user", content: "Speak." },
  ];
  let chatText;
  check("chat: greedy answer with exact usage", async () => {
    const r = await client.chat.completions.create({
      model, messages, max_tokens: 10, temperature: 0, ignore_eos: true,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    chatText = r.choices[0].message.content;
    assert.equal(typeof chatText, "string");
    assert.equal(r.usage.completion_tokens, 10);
  });
  check("chat: streaming deltas add up to the same answer", async () => {
    const stream = await client.chat.completions.create({
      model, messages, max_tokens: 10, temperature: 0, ignore_eos: true, stream: true,
    });
    let text = "";
    for await (const chunk of stream) for (const c of chunk.choices) text += c.delta?.content ?? "";
    assert.equal(text, chatText);
  });
} else {
  check("chat: a model without a chat template answers 400", async () => {
    await assert.rejects(
      client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
      (e) => e instanceof OpenAI.APIError && e.status === 400,
    );
  });
}

let failed = 0;
for (const { name, fn } of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
console.log(`${checks.length - failed}/${checks.length} checks passed`);
process.exit(failed ? 1 : 0);
