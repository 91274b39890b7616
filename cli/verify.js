#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// onnxhook verify's runner: holds every layer of a traced model against the program's own buffers.
// The preload wrote the model and, with ONNXHOOK_LAYER_DATA=1, its test data set: input_N.pb,
// output_N.pb, then every other layer's result as output_<N+k>.pb named as the model names the
// value (doc_string: "onnxhook test data of <model>\nhost call: <symbol>"). This file reads both
// (the weights never pass through the onnxhook command), makes every layer a graph output of a
// copy of the model in memory, runs it in onnxruntime-node on input_N.pb and compares.
//
// A layer is within tolerance when max|ort - program| <= atol + rtol * max|program|. For the first
// layer that is not, the host call's nodes run again alone, on the program's own values of what
// they read (a model of just those nodes): still off, the op's mapping is wrong; right, the drift
// came in with its inputs (their differences are listed too).
//
// usage: node verify.js --model M.onnx [--set DIR] [--rtol R] [--atol A] [--json]
//                       [--ort-version V] [--remove-set] | --check-ort [--ort-version V]
// Exit: 0 every layer within tolerance, 1 drift, 125 cannot verify (message on stderr).
// Also a module: test-data-run.js uses readTensor, readModel and withOutputs.
'use strict';

const fs = require('fs');
const path = require('path');

const EXIT_DRIFT = 1, EXIT_OWN = 125;

class Failure extends Error {}
function fail(msg) {
  throw new Failure(msg);
}

// ---- protobuf, as far as ONNX files need it ----
function* fields(buf, start = 0, end = buf.length) {
  let pos = start;
  const varint = () => {
    let v = 0, mul = 1;
    for (;;) {
      if (pos >= end) fail('truncated protobuf');
      const b = buf[pos++];
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
  };
  while (pos < end) {
    const keyStart = pos;
    const key = varint();
    const num = Math.floor(key / 8), wt = key & 7;
    if (wt === 0) {
      yield { num, wt, keyStart, value: varint(), end: pos };
    } else if (wt === 2) {
      const len = varint();
      if (pos + len > end) fail('truncated protobuf');
      yield { num, wt, keyStart, start: pos, end: pos + len };
      pos += len;
    } else if (wt === 1 || wt === 5) {
      pos += wt === 1 ? 8 : 4;
    } else {
      fail(`unsupported protobuf wire type ${wt}`);
    }
  }
}

function varintBytes(v) {
  const out = [];
  while (v >= 128) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
const lenField = (num, bytes) => Buffer.concat([varintBytes(num * 8 + 2), varintBytes(bytes.length), bytes]);
const str = (buf, f) => buf.toString('utf8', f.start, f.end);

// A TensorProto file: name (8), dims (1), data_type (2), raw_data (9), doc_string (12).
function readTensor(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  const t = { file, dims: [], dataType: 0, name: null, doc: '', raw: null };
  for (const f of fields(buf)) {
    if (f.num === 1 && f.wt === 0) t.dims.push(f.value);
    else if (f.num === 1 && f.wt === 2) { // packed
      for (let p = f.start; p < f.end;) {
        let v = 0, mul = 1, b;
        do {
          b = buf[p++];
          v += (b & 0x7f) * mul;
          mul *= 128;
        } while (b & 0x80 && p < f.end);
        t.dims.push(v);
      }
    }
    else if (f.num === 2 && f.wt === 0) t.dataType = f.value;
    else if (f.num === 8 && f.wt === 2) t.name = str(buf, f);
    else if (f.num === 9 && f.wt === 2) t.raw = buf.subarray(f.start, f.end);
    else if (f.num === 12 && f.wt === 2) t.doc = str(buf, f);
  }
  if (t.dataType !== 1) fail(`${file}: data_type ${t.dataType}, only float32 (1) is compared`);
  if (!t.raw) fail(`${file}: no raw_data`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.raw.length !== n * 4) fail(`${file}: raw_data holds ${t.raw.length} bytes, dims [${t.dims}] need ${n * 4}`);
  t.data = new Float32Array(n);
  for (let i = 0; i < n; i++) t.data[i] = t.raw.readFloatLE(i * 4);
  const host = /\nhost call: (.*)$/.exec(t.doc);
  t.hostCall = host ? host[1] : null;
  return t;
}

// The parts of a ModelProto verify needs; every part keeps its bytes, so models can be rebuilt.
function readModel(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  const m = { file, buf, graph: null, top: [], nodes: [], inits: new Map(), inputs: [], outputs: [],
    valueInfo: new Map(), external: false };
  for (const f of fields(buf)) {
    if (f.num === 7 && f.wt === 2) m.graph = f;
    else if (f.num !== 14) m.top.push(buf.subarray(f.keyStart, f.end)); // all but metadata_props
  }
  if (!m.graph) fail(`${file}: no graph`);
  for (const f of fields(buf, m.graph.start, m.graph.end)) {
    if (f.wt !== 2) continue;
    const bytes = buf.subarray(f.keyStart, f.end);
    if (f.num === 1) {
      const n = { index: m.nodes.length, inputs: [], outputs: [], name: '', op: '', doc: '', bytes };
      for (const g of fields(buf, f.start, f.end)) {
        if (g.wt !== 2) continue;
        if (g.num === 1) n.inputs.push(str(buf, g));
        else if (g.num === 2) n.outputs.push(str(buf, g));
        else if (g.num === 3) n.name = str(buf, g);
        else if (g.num === 4) n.op = str(buf, g);
        else if (g.num === 6) n.doc = str(buf, g);
      }
      m.nodes.push(n);
    } else if (f.num === 5 || f.num === 11 || f.num === 12 || f.num === 13) {
      let name = '';
      for (const g of fields(buf, f.start, f.end)) {
        if (g.num === (f.num === 5 ? 8 : 1) && g.wt === 2) name = str(buf, g);
        if (f.num === 5 && g.num === 14 && g.wt === 0 && g.value === 1) m.external = true;
      }
      const vi = { name, body: buf.subarray(f.start, f.end), bytes };
      if (f.num === 5) m.inits.set(name, vi);
      else if (f.num === 11) m.inputs.push(vi);
      else if (f.num === 12) m.outputs.push(vi);
      else m.valueInfo.set(name, vi);
    }
  }
  m.producer = new Map();
  for (const n of m.nodes) for (const o of n.outputs) m.producer.set(o, n);
  return m;
}

// The model with each of names a graph output too (their value_info says type and shape).
function withOutputs(m, names) {
  const have = new Set(m.outputs.map((o) => o.name));
  const add = [];
  for (const name of names) {
    if (have.has(name)) continue;
    const vi = m.valueInfo.get(name);
    if (!vi) fail(`${m.file} has no value '${name}'`);
    add.push(lenField(12, vi.body));
    have.add(name);
  }
  const graph = Buffer.concat([m.buf.subarray(m.graph.start, m.graph.end), ...add]);
  return Buffer.concat([m.buf.subarray(0, m.graph.keyStart), lenField(7, graph), m.buf.subarray(m.graph.end)]);
}

// A model of the given nodes only: inputs is [name, ValueInfoProto body], outputs likewise.
function subModel(m, nodes, inputs, outputs) {
  const inits = new Set();
  for (const n of nodes) for (const i of n.inputs) if (m.inits.has(i)) inits.add(i);
  const graph = Buffer.concat([
    ...nodes.map((n) => n.bytes),
    lenField(2, Buffer.from('onnxhook-verify')),
    ...[...inits].map((i) => m.inits.get(i).bytes),
    ...inputs.map((b) => lenField(11, b)),
    ...outputs.map((b) => lenField(12, b)),
  ]);
  return Buffer.concat([...m.top, lenField(7, graph)]);
}

// ---- onnxruntime-node ----
// ONNXHOOK_ORT: a directory holding node_modules/onnxruntime-node, or the package itself; else
// node's resolution from this file (an installed package beside it, the source tree's tests/ort)
// and from the working directory.
function loadOrt(pinned) {
  const env = process.env.ONNXHOOK_ORT;
  const tried = [];
  const candidates = env
    ? [path.resolve(env, 'node_modules', 'onnxruntime-node'), path.resolve(env)]
    : [];
  for (const c of candidates) {
    if (!fs.existsSync(path.join(c, 'package.json'))) {
      tried.push(c);
      continue;
    }
    try {
      return require(c);
    } catch (e) {
      fail(`cannot load onnxruntime-node from ${c}: ${e.message}`);
    }
  }
  if (!env) {
    let found = null;
    try {
      found = require.resolve('onnxruntime-node', {
        paths: [__dirname, path.join(__dirname, '..', 'tests', 'ort'), process.cwd()],
      });
    } catch (e) {
      found = null;
    }
    if (found) {
      try {
        return require(found);
      } catch (e) {
        fail(`cannot load onnxruntime-node from ${found}: ${e.message}`);
      }
    }
  }
  const where = env ? `ONNXHOOK_ORT=${env} holds no onnxruntime-node` : 'onnxruntime-node not found';
  fail(`${where}: install it with 'npm install --ignore-scripts onnxruntime-node@${pinned || 'latest'}' ` +
       '(here, or in a directory named by ONNXHOOK_ORT)');
  return null;
}

// A session on bytes; beside the model when its weights are in an external data file (onnxruntime
// finds that file relative to the model's own path).
async function session(ort, m, bytes) {
  const opts = { executionProviders: ['cpu'] };
  if (!m.external) return ort.InferenceSession.create(bytes, opts);
  const tmp = path.join(path.dirname(m.file), `.onnxhook-verify.${process.pid}.onnx`);
  fs.writeFileSync(tmp, bytes, { flag: 'wx', mode: 0o600 });
  try {
    return await ort.InferenceSession.create(tmp, opts);
  } finally {
    fs.unlinkSync(tmp);
  }
}

// ---- the test data set ----
// The model's set: test_data_set_0 beside it when it is this model's, else <model>.test_data_set_0.
function findSet(model) {
  const dir = path.dirname(model), base = path.basename(model);
  const zoo = path.join(dir, 'test_data_set_0'), alt = path.join(dir, `${base}.test_data_set_0`);
  const doc = `onnxhook test data of ${base}`;
  const ours = (set) => {
    try {
      const f = fs.readdirSync(set).filter((x) => /^(input|output)_\d+\.pb$/.test(x)).sort()[0];
      const t = readTensor(path.join(set, f));
      return t.doc === doc || t.doc.startsWith(`${doc}\n`);
    } catch (e) {
      return false;
    }
  };
  if (ours(zoo)) return zoo;
  if (fs.existsSync(alt)) return alt;
  fail(`no test data set of ${base} in ${dir} (traced with ONNXHOOK_LAYER_DATA=1?)`);
  return null;
}

function readSet(dir) {
  const files = fs.readdirSync(dir);
  const pick = (prefix) => files.map((f) => new RegExp(`^${prefix}_(\\d+)\\.pb$`).exec(f)).filter(Boolean)
    .sort((a, b) => Number(a[1]) - Number(b[1])).map((x) => readTensor(path.join(dir, x[0])));
  return { inputs: pick('input'), outputs: pick('output') };
}

// ---- comparing ----
function compare(got, want, rtol, atol) {
  let maxAbs = 0, maxRef = 0, nanMismatch = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i], b = want[i];
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) nanMismatch++;
      continue;
    }
    if (Number.isFinite(b)) maxRef = Math.max(maxRef, Math.abs(b));
    if (a === b) continue; // also equal infinities
    const d = Math.abs(a - b);
    if (!(d <= maxAbs)) maxAbs = d;
  }
  const maxRel = maxAbs === 0 ? 0 : maxRef > 0 ? maxAbs / maxRef : Infinity;
  const ok = nanMismatch === 0 && got.length === want.length && maxAbs <= atol + rtol * maxRef;
  return { maxAbs, maxRel, nanMismatch, ok };
}

// What the host call that produced value reads: walking back from its node through the values no
// host call wrote (a Flatten before a Gemm, a Slice or Concat view of earlier results), up to
// captured values, graph inputs and weights. Returns its nodes (graph order) and those reads.
function callOf(m, value, captured) {
  const nodes = new Set(), reads = new Set();
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    const n = m.producer.get(v);
    if (!n || nodes.has(n)) continue;
    nodes.add(n);
    for (const i of n.inputs) {
      if (!i || m.inits.has(i)) continue;
      if (captured.has(i) || !m.producer.has(i)) reads.add(i);
      else stack.push(i);
    }
  }
  return { nodes: [...nodes].sort((a, b) => a.index - b.index), reads: [...reads] };
}

const fmt = (x) => (x === Infinity ? 'inf' : x.toExponential(2));
const shapeStr = (dims) => dims.join('x') || 'scalar';

async function verify(opts) {
  const m = readModel(opts.model);
  const setDir = opts.set || findSet(opts.model);
  const set = readSet(setDir);
  if (!set.inputs.length && m.inputs.length) fail(`${setDir} holds no input_N.pb`);
  const ort = loadOrt(opts.ortVersion);

  // Every captured tensor by the model's name for it; graph inputs are fed as they are.
  const captured = new Map();
  for (const t of [...set.inputs, ...set.outputs]) captured.set(t.name, t);
  const feeds = {};
  for (const t of set.inputs) feeds[t.name] = new ort.Tensor('float32', t.data, t.dims);
  const layers = set.outputs.map((t) => {
    const n = m.producer.get(t.name);
    if (!n) fail(`${t.file}: the model computes no value '${t.name}'`);
    return { t, n };
  }).sort((a, b) => a.n.index - b.n.index || a.t.name.localeCompare(b.t.name));

  let s;
  try {
    s = await session(ort, m, withOutputs(m, layers.map((l) => l.t.name)));
  } catch (e) {
    fail(`onnxruntime refused ${opts.model}: ${e.message}`);
  }
  let results;
  try {
    results = await s.run(feeds);
  } catch (e) {
    fail(`onnxruntime cannot run ${opts.model}: ${e.message}`);
  }
  const report = layers.map(({ t, n }, i) => {
    const got = results[t.name];
    const c = compare(got.data, t.data, opts.rtol, opts.atol);
    return { index: i + 1, value: t.name, node: n.name, op: n.op, host_call: t.hostCall, shape: t.dims,
      max_abs: c.maxAbs, max_rel: c.maxRel, nan_mismatches: c.nanMismatch, ok: c.ok };
  });
  const byValue = new Map(report.map((r) => [r.value, r]));
  const first = report.find((r) => !r.ok);
  let drift = null;
  if (first) {
    // Its reads: captured earlier layers hold their own comparison; graph inputs were fed exact.
    const call = callOf(m, first.value, captured);
    const inputs = call.reads.map((name) => {
      const r = byValue.get(name);
      return r ? { value: name, node: r.node, max_abs: r.max_abs, max_rel: r.max_rel, ok: r.ok }
        : { value: name, node: null, max_abs: 0, max_rel: 0, ok: true, graph_input: true };
    });
    // The call alone on the program's own values of what it reads: exact whatever came before.
    let alone = null;
    const io = (name) => (m.valueInfo.get(name) || m.inputs.find((v) => v.name === name) ||
      m.outputs.find((v) => v.name === name) || {}).body;
    const missing = call.reads.filter((name) => !captured.has(name) || !io(name));
    if (!missing.length && io(first.value)) {
      const sub = subModel(m, call.nodes, call.reads.map(io), [io(first.value)]);
      const subFeeds = {};
      for (const name of call.reads) {
        const t = captured.get(name);
        subFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
      }
      try {
        const r = await (await session(ort, m, sub)).run(subFeeds);
        const c = compare(r[first.value].data, captured.get(first.value).data, opts.rtol, opts.atol);
        alone = { max_abs: c.maxAbs, max_rel: c.maxRel, ok: c.ok };
      } catch (e) {
        alone = { error: e.message };
      }
    }
    const carried = alone && alone.ok !== undefined ? alone.ok : inputs.some((x) => !x.ok);
    // The call stack the preload kept (ONNXHOOK_STACK=1): where the program made the call.
    drift = { ...first, stack: m.producer.get(first.value).doc || null, nodes: call.nodes.map((n) => n.name), inputs, alone,
      cause: carried ? 'inputs' : 'mapping' };
  }
  return { model: opts.model, set: setDir, rtol: opts.rtol, atol: opts.atol, layers: report, drift,
    ok: !first };
}

function printText(r) {
  const w = Math.max(4, ...r.layers.map((l) => l.node.length));
  const ow = Math.max(2, ...r.layers.map((l) => l.op.length));
  const sw = Math.max(5, ...r.layers.map((l) => shapeStr(l.shape).length));
  const out = [`${'#'.padStart(4)}  ${'node'.padEnd(w)}  ${'op'.padEnd(ow)}  ${'shape'.padEnd(sw)}  ` +
    `${'max abs'.padStart(9)}  ${'max rel'.padStart(9)}`];
  for (const l of r.layers) {
    out.push(`${String(l.index).padStart(4)}  ${l.node.padEnd(w)}  ${l.op.padEnd(ow)}  ` +
      `${shapeStr(l.shape).padEnd(sw)}  ${fmt(l.max_abs).padStart(9)}  ${fmt(l.max_rel).padStart(9)}  ` +
      `${l.ok ? 'ok' : 'DRIFT'}${l.nan_mismatches ? ` (${l.nan_mismatches} NaN mismatches)` : ''}`);
  }
  const tol = `rtol ${r.rtol}, atol ${r.atol}`;
  if (r.ok) {
    out.push(`onnxhook: verify: ${r.model}: all ${r.layers.length} layers within tolerance (${tol})`);
  } else {
    const d = r.drift;
    const bad = r.layers.filter((l) => !l.ok).length;
    out.push(`onnxhook: verify: ${r.model}: DRIFT in ${bad} of ${r.layers.length} layers (${tol})`);
    out.push(`onnxhook: first drift: layer ${d.index}, ${d.node} (${d.op}), host call ` +
      `${d.host_call || 'unknown'}: max abs ${fmt(d.max_abs)}, max rel ${fmt(d.max_rel)}`);
    if (d.stack) out.push(`onnxhook:   called from ${d.stack.split('\n').slice(0, 3).join(' < ')}`);
    for (const i of d.inputs) {
      out.push(`onnxhook:   reads ${i.graph_input ? `${i.value} (graph input, fed as the program had it)`
        : `${i.value}: max abs ${fmt(i.max_abs)}, max rel ${fmt(i.max_rel)} ${i.ok ? 'ok' : 'DRIFT'}`}`);
    }
    if (d.alone && d.alone.error) out.push(`onnxhook:   run alone: onnxruntime failed: ${d.alone.error}`);
    else if (d.alone) {
      out.push(`onnxhook:   run alone on the program's own inputs: max abs ${fmt(d.alone.max_abs)}, ` +
        `max rel ${fmt(d.alone.max_rel)} ${d.alone.ok ? 'ok' : 'DRIFT'}`);
    }
    out.push(d.cause === 'mapping'
      ? `onnxhook: its inputs are within tolerance: the mapping of ${d.host_call || d.op} to ${d.op} is wrong`
      : `onnxhook: drift carried in: ${d.alone && d.alone.ok ? 'on the program\'s own inputs the op is right' +
        ' (small input differences grow here)' : 'its inputs already differed'}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

function removeSet(dir) {
  for (const f of fs.readdirSync(dir)) {
    if (/^(input|output)_\d+\.pb$/.test(f)) fs.unlinkSync(path.join(dir, f));
  }
  fs.rmdirSync(dir);
}

function parseArgs(argv) {
  const opts = { rtol: 1e-4, atol: 1e-6, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) fail(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--model') opts.model = val();
    else if (k === '--set') opts.set = val();
    else if (k === '--rtol' || k === '--atol') {
      const v = val(), x = Number(v);
      if (v.trim() === '' || !(x >= 0) || !Number.isFinite(x)) fail(`${k} wants a number >= 0, not '${v}'`);
      opts[k.slice(2)] = x;
    } else if (k === '--json') opts.json = true;
    else if (k === '--ort-version') opts.ortVersion = val();
    else if (k === '--remove-set') opts.removeSet = true;
    else if (k === '--check-ort') opts.checkOrt = true;
    else fail(`unknown argument ${k}`);
  }
  if (!opts.model && !opts.checkOrt) fail('usage: verify.js --model M.onnx [--set DIR] [--rtol R] [--atol A] [--json]');
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.checkOrt) {
    loadOrt(opts.ortVersion);
    return 0;
  }
  const r = await verify(opts);
  if (opts.removeSet) removeSet(r.set);
  if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
  else printText(r);
  return r.ok ? 0 : EXIT_DRIFT;
}

if (require.main === module) {
  main().then((code) => { process.exitCode = code; }, (e) => {
    process.stderr.write(`onnxhook: error: ${e instanceof Failure ? e.message : e.stack || e}\n`);
    process.exitCode = EXIT_OWN;
  });
}

module.exports = { readTensor, readModel, withOutputs, Failure };
