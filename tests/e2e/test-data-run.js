#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The model-zoo check of a traced model: onnxruntime runs it on test_data_set_0/input_N.pb and must
// give output_N.pb (max|ort - expected| / max|expected| <= tol). Names, dims and types of every
// file must be those of the model's inputs and outputs, and every input and output must have one.
//
// A set traced with --layer-data (ONNXHOOK_LAYER_DATA=1) holds every other layer's result after
// output_N, as output_<N+k>.pb named after the model's value: those become graph outputs of a copy
// of the model in memory (cli/verify.js, onnxhook verify's runner, does it) and are held the same way.
//
// usage: node test-data-run.js --model M.onnx --set DIR [--tol 1e-4]
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('./ort-common.js');
const verify = require('../../cli/verify.js');

common.setTool('test-data-run');
const { die } = common;

// ---- a TensorProto reader: dims (1), data_type (2), name (8), raw_data (9) ----
function readTensor(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    die(`cannot read ${file}: ${e.message}`);
  }
  let pos = 0;
  const varint = (end) => {
    let v = 0n, shift = 0n;
    for (;;) {
      if (pos >= end) die(`${file}: truncated protobuf`);
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  const t = { dims: [], dataType: 0, name: null, raw: null };
  while (pos < buf.length) {
    const key = Number(varint(buf.length));
    const num = key >>> 3, wt = key & 7;
    if (wt === 0) {
      const v = varint(buf.length);
      if (num === 1) t.dims.push(Number(BigInt.asIntN(64, v)));
      else if (num === 2) t.dataType = Number(v);
    } else if (wt === 2) {
      const len = Number(varint(buf.length));
      const end = pos + len;
      if (end > buf.length) die(`${file}: truncated protobuf`);
      if (num === 1) { // packed dims
        while (pos < end) t.dims.push(Number(BigInt.asIntN(64, varint(end))));
      } else if (num === 8) {
        t.name = buf.toString('utf8', pos, end);
      } else if (num === 9) {
        t.raw = buf.subarray(pos, end);
      }
      pos = end;
    } else if (wt === 1) {
      pos += 8;
    } else if (wt === 5) {
      pos += 4;
    } else {
      die(`${file}: unsupported protobuf wire type ${wt}`);
    }
  }
  if (t.dataType !== 1) die(`${file}: data_type ${t.dataType}, expected 1 (float)`);
  if (!t.raw) die(`${file}: no raw_data`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.raw.length !== n * 4) die(`${file}: raw_data holds ${t.raw.length} bytes, dims ${t.dims} need ${n * 4}`);
  t.data = new Float32Array(n);
  for (let i = 0; i < n; i++) t.data[i] = t.raw.readFloatLE(i * 4);
  return t;
}

async function main() {
  const args = { tol: 1e-4 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) die(`${k} needs a value`);
    if (k === '--model') args.model = v;
    else if (k === '--set') args.set = v;
    else if (k === '--tol') args.tol = Number(v);
    else die(`unknown argument ${k}`);
  }
  if (!args.model || !args.set) die('usage: test-data-run.js --model M.onnx --set DIR [--tol T]');

  const ort = common.loadOrt();
  let session = await common.createSession(ort, args.model);
  const io = common.describeIo(session, args.model);
  const files = fs.readdirSync(args.set).sort();
  // Layers after output_N: the model with them as outputs too.
  const layers = [];
  for (let k = io.outputs.length; files.includes(`output_${k}.pb`); k++) {
    const file = path.join(args.set, `output_${k}.pb`);
    layers.push({ file, name: `output_${k}.pb`, t: readTensor(file) });
  }
  if (layers.length) {
    try {
      const m = verify.readModel(args.model);
      session = await ort.InferenceSession.create(verify.withOutputs(m, layers.map((l) => l.t.name)),
        { executionProviders: ['cpu'] });
    } catch (e) {
      die(`cannot make the layers of ${args.set} outputs of ${args.model}: ${e.message}`);
    }
  }
  const want = [...io.inputs.map((_, i) => `input_${i}.pb`), ...io.outputs.map((_, i) => `output_${i}.pb`),
    ...layers.map((l) => l.name)].sort();
  if (JSON.stringify(files) !== JSON.stringify(want)) {
    die(`${args.set} holds [${files}], the model needs exactly [${want}]`);
  }
  const check = (v, t, file) => {
    if (t.name !== v.name) die(`${file}: name '${t.name}', the model's is '${v.name}'`);
    if (JSON.stringify(t.dims) !== JSON.stringify(v.shape)) {
      die(`${file}: dims [${t.dims}], the model's ${v.name} is ${common.fmtShape(v.shape)}`);
    }
  };
  const feeds = {};
  io.inputs.forEach((v, i) => {
    const file = path.join(args.set, `input_${i}.pb`);
    const t = readTensor(file);
    check(v, t, file);
    feeds[v.name] = new ort.Tensor('float32', t.data, t.dims);
  });
  const results = await session.run(feeds);
  let worst = 0;
  io.outputs.forEach((v, i) => {
    const file = path.join(args.set, `output_${i}.pb`);
    const t = readTensor(file);
    check(v, t, file);
    const got = results[v.name].data;
    const r = common.compare([got], t.data);
    if (r.nanMismatch) die(`${v.name}: ${r.nanMismatch} NaN mismatches`);
    if (!(r.rel <= args.tol)) {
      die(`${v.name}: max|ort - expected| / max|expected| = ${r.rel} > ${args.tol} ` +
          `(at ${r.worst}: ort ${r.ortAt(r.worst)}, expected ${r.appAt(r.worst)})`);
    }
    worst = Math.max(worst, r.rel);
  });
  for (const l of layers) {
    const got = results[l.t.name];
    if (!got) die(`${l.file}: the model gives no ${l.t.name}`);
    if (JSON.stringify([...got.dims]) !== JSON.stringify(l.t.dims)) {
      die(`${l.file}: dims [${l.t.dims}], the model's ${l.t.name} is [${got.dims}]`);
    }
    const r = common.compare([got.data], l.t.data);
    if (r.nanMismatch) die(`${l.t.name}: ${r.nanMismatch} NaN mismatches`);
    if (!(r.rel <= args.tol)) die(`layer ${l.t.name}: max|ort - expected| / max|expected| = ${r.rel} > ${args.tol}`);
    worst = Math.max(worst, r.rel);
  }
  console.log(`test-data-run: ok: ${io.inputs.length} input(s), ${io.outputs.length} output(s), ` +
              `${layers.length} layer(s), ` +
              `rel. err. ${worst.toExponential(2)} <= ${args.tol}`);
}

main().catch((e) => die(e.stack || String(e)));
