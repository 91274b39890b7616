// SPDX-License-Identifier: MIT
// Shared by ort-compare.js and darknet/compare-layers.js: loading onnxruntime-node, the model's
// inputs/outputs, raw float32 files, seeded inputs, and the max|ort - app| / max|app| comparison.
'use strict';

const fs = require('fs');
const path = require('path');

let tool = 'ort';

// Prefix of every message ("ort-compare: error: ...").
function setTool(name) {
  tool = name;
}

function die(msg) {
  process.stderr.write(`${tool}: error: ${msg}\n`);
  process.exit(1);
}

function warn(msg) {
  process.stderr.write(`${tool}: warning: ${msg}\n`);
}

function loadOrt() {
  const dir = process.env.ONNXHOOK_ORT_DIR || path.join(__dirname, '..', 'ort');
  const mod = path.resolve(dir, 'node_modules', 'onnxruntime-node');
  try {
    return require(mod);
  } catch (e) {
    die(`cannot load onnxruntime-node from ${mod}: ${e.message}\n` +
        `  install it with: (cd ${path.resolve(dir)} && npm ci --ignore-scripts)`);
  }
  return null;
}

// --- a minimal protobuf reader: graph inputs/outputs of a ModelProto, used only when the
// onnxruntime version does not expose inputMetadata/outputMetadata ---
function* fields(buf, start, end) {
  let pos = start;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      if (pos >= end) throw new Error('truncated protobuf');
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (pos < end) {
    const key = Number(varint());
    const num = key >>> 3, wt = key & 7;
    if (wt === 0) {
      yield { num, wt, value: varint() };
    } else if (wt === 2) {
      const len = Number(varint());
      if (pos + len > end) throw new Error('truncated protobuf');
      yield { num, wt, start: pos, end: pos + len };
      pos += len;
    } else if (wt === 1) {
      pos += 8;
    } else if (wt === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported protobuf wire type ${wt}`);
    }
  }
}

function sub(buf, f, num) {
  const out = [];
  for (const g of fields(buf, f.start, f.end)) if (g.num === num && g.wt === 2) out.push(g);
  return out;
}

// ValueInfoProto -> { name, type, shape } with symbolic dims as strings (or null if unknown)
function parseValueInfo(buf, vi) {
  let name = '', elem = 0, shape = null;
  for (const f of fields(buf, vi.start, vi.end)) {
    if (f.num === 1 && f.wt === 2) name = buf.toString('utf8', f.start, f.end);
    if (f.num === 2 && f.wt === 2) {
      for (const tt of sub(buf, f, 1)) { // TypeProto.tensor_type
        for (const g of fields(buf, tt.start, tt.end)) {
          if (g.num === 1 && g.wt === 0) elem = Number(g.value);
          if (g.num === 2 && g.wt === 2) { // TensorShapeProto
            shape = [];
            for (const d of sub(buf, g, 1)) {
              let dim = null;
              for (const h of fields(buf, d.start, d.end)) {
                if (h.num === 1 && h.wt === 0) dim = Number(BigInt.asIntN(64, h.value));
                if (h.num === 2 && h.wt === 2) dim = buf.toString('utf8', h.start, h.end) || '?';
              }
              shape.push(dim === null ? '?' : dim);
            }
          }
        }
      }
    }
  }
  return { name, type: elem === 1 ? 'float32' : `onnx elem_type ${elem}`, shape };
}

function parseModelIo(file) {
  const buf = fs.readFileSync(file);
  for (const f of fields(buf, 0, buf.length)) {
    if (f.num === 7 && f.wt === 2) { // ModelProto.graph
      const g = { inputs: [], outputs: [], inits: new Set() };
      for (const h of fields(buf, f.start, f.end)) {
        if (h.wt !== 2) continue;
        if (h.num === 11) g.inputs.push(parseValueInfo(buf, h));
        if (h.num === 12) g.outputs.push(parseValueInfo(buf, h));
        if (h.num === 5) {
          for (const t of fields(buf, h.start, h.end)) {
            if (t.num === 8 && t.wt === 2) g.inits.add(buf.toString('utf8', t.start, t.end));
          }
        }
      }
      // older IRs list initializers among the inputs too; onnxruntime does not feed those
      g.inputs = g.inputs.filter((v) => !g.inits.has(v.name));
      return g;
    }
  }
  throw new Error('no graph in the model');
}

// Input/output descriptions in the model's order: [{ name, type, shape }]
function describeIo(session, modelPath) {
  let parsed = null;
  const fromFile = () => {
    if (!parsed) {
      try {
        parsed = parseModelIo(modelPath);
      } catch (e) {
        die(`cannot read the graph inputs/outputs of ${modelPath}: ${e.message}`);
      }
    }
    return parsed;
  };
  const pick = (metaList, names, which) => names.map((name, i) => {
    const m = metaList && metaList[i];
    if (m && m.name === name && m.isTensor !== false && Array.isArray(m.shape)) {
      return { name, type: m.type, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) };
    }
    const v = fromFile()[which].find((x) => x.name === name);
    if (!v) die(`graph ${which} '${name}' not found in ${modelPath}`);
    return v;
  });
  return {
    inputs: pick(session.inputMetadata, session.inputNames, 'inputs'),
    outputs: pick(session.outputMetadata, session.outputNames, 'outputs'),
  };
}

// input_0, input_1, ... are fed in index order; other names keep the model's order
function ordered(list, prefix) {
  const re = new RegExp(`^${prefix}_(\\d+)$`);
  if (!list.every((v) => re.test(v.name))) {
    warn(`${prefix}s not all named ${prefix}_N; using the model's order`);
    return list;
  }
  return [...list].sort((a, b) => Number(re.exec(a.name)[1]) - Number(re.exec(b.name)[1]));
}

const isStatic = (shape) => Array.isArray(shape) && shape.every((d) => Number.isInteger(d) && d >= 0);
const numel = (shape) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape) => (shape ? `[${shape.join(',')}]` : '(unknown rank)');

function checkFloat(v, which) {
  if (v.type !== 'float32') die(`${which} '${v.name}' has type ${v.type}; only float32 is supported`);
}

// mulberry32: seeded, portable, plenty for test inputs
function rng(seed) {
  let a = (seed >>> 0) ^ 0x6d2b79f5;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function readFloats(file, what) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    die(`cannot read ${what} ${file}: ${e.message}`);
  }
  if (buf.length % 4) die(`${what} ${file} is ${buf.length} bytes, not a whole number of float32`);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

function writeFloats(file, data) {
  const buf = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) buf.writeFloatLE(data[i], i * 4);
  fs.writeFileSync(file, buf);
}

// Splits total elements over the inputs; at most one unknown dim overall is solved from the size.
function resolveInputShapes(inputs, total) {
  const unknown = [];
  let known = 0;
  for (const v of inputs) {
    if (!Array.isArray(v.shape)) die(`input '${v.name}' has no shape in the model`);
    v.shape.forEach((d, j) => { if (!(Number.isInteger(d) && d >= 0)) unknown.push([v, j]); });
    if (isStatic(v.shape)) known += numel(v.shape);
  }
  if (unknown.length === 0) {
    if (known !== total) {
      die(`input file holds ${total} float32 values but the model's inputs take ${known} (` +
          inputs.map((v) => `${v.name} ${fmtShape(v.shape)}`).join(', ') + ')');
    }
    return inputs.map((v) => v.shape);
  }
  if (unknown.length > 1) {
    die(`inputs have ${unknown.length} symbolic dims (` + inputs.map((v) => `${v.name} ${fmtShape(v.shape)}`).join(', ') +
        '); cannot split the input file');
  }
  const [uv, uj] = unknown[0];
  const rest = numel(uv.shape.filter((d, j) => j !== uj));
  const left = total - known;
  if (rest === 0 || left < 0 || left % rest) {
    die(`cannot solve symbolic dim ${uj} of input '${uv.name}' ${fmtShape(uv.shape)} from ${total} values`);
  }
  return inputs.map((v) => (v === uv ? v.shape.map((d, j) => (j === uj ? left / rest : d)) : v.shape));
}

async function createSession(ort, model) {
  if (!fs.existsSync(model)) die(`model ${model} does not exist`);
  try {
    return await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  } catch (e) {
    die(`onnxruntime refused the model ${model}: ${e.message}`);
  }
  return null;
}

// Feeds for the (ordered) inputs from one raw file holding them back to back.
function makeFeeds(ort, inputs, inData) {
  const shapes = resolveInputShapes(inputs, inData.length);
  const feeds = {};
  let off = 0;
  inputs.forEach((v, i) => {
    const n = numel(shapes[i]);
    feeds[v.name] = new ort.Tensor('float32', inData.slice(off, off + n), shapes[i]);
    off += n;
  });
  return { feeds, shapes };
}

// Seeded uniform[-1, 1] values for static-shaped inputs.
function genInput(inputs, seed) {
  const bad = inputs.filter((v) => !isStatic(v.shape));
  if (bad.length) {
    die('cannot generate an input for symbolic/unknown shapes: ' +
        bad.map((v) => `${v.name} ${fmtShape(v.shape)}`).join(', '));
  }
  const total = inputs.reduce((a, v) => a + numel(v.shape), 0);
  const next = rng(seed);
  const data = new Float32Array(total);
  for (let i = 0; i < total; i++) data[i] = next() * 2 - 1;
  return data;
}

function flatAt(parts, k) {
  for (const t of parts) {
    if (k < t.length) return t[k];
    k -= t.length;
  }
  return undefined;
}

// Compares the concatenation of the arrays in parts with expect (same length): NaN must match NaN,
// equal infinities are equal. Returns { maxAbs, maxRef, rel, worst, nans, nanMismatch, firstNan }.
function compare(parts, expect) {
  let k = 0, maxAbs = 0, maxRef = 0, worst = -1, nanMismatch = 0, firstNan = -1, nans = 0;
  for (const data of parts) {
    for (let i = 0; i < data.length; i++, k++) {
      const a = data[i], b = expect[k];
      if (Number.isNaN(a) || Number.isNaN(b)) {
        if (Number.isNaN(a) && Number.isNaN(b)) {
          nans++;
        } else {
          nanMismatch++;
          if (firstNan < 0) firstNan = k;
        }
        continue;
      }
      if (a === b) { // also equal infinities
        if (Number.isFinite(b)) maxRef = Math.max(maxRef, Math.abs(b));
        continue;
      }
      const d = Math.abs(a - b);
      if (Number.isFinite(b)) maxRef = Math.max(maxRef, Math.abs(b));
      if (!(d <= maxAbs)) {
        maxAbs = d;
        worst = k;
      }
    }
  }
  const rel = maxAbs === 0 ? 0 : maxRef > 0 ? maxAbs / maxRef : Infinity;
  return { maxAbs, maxRef, rel, worst, nans, nanMismatch, firstNan,
    ortAt: (j) => flatAt(parts, j), appAt: (j) => expect[j] };
}

module.exports = {
  setTool, die, warn, loadOrt, parseModelIo, describeIo, ordered, isStatic, numel, fmtShape,
  checkFloat, rng, readFloats, writeFloats, resolveInputShapes, createSession, makeFeeds, genInput,
  compare, flatAt,
};
