// SPDX-License-Identifier: MIT
// Runs an onnxhook model in onnxruntime (CPU) on a raw input and compares with the app's output.
'use strict';

const common = require('./ort-common');

common.setTool('ort-compare');
const { die } = common;

const USAGE = `usage:
  node ort-compare.js --model M.onnx --in IN.bin --expect OUT.bin [--tol 1e-4] [--save ORT.bin]
  node ort-compare.js --model M.onnx --gen-input IN.bin [--seed S] [--batch N]
IN.bin holds the model's inputs (input_0, input_1, ...) back to back, raw little-endian float32;
--batch N gives a symbolic dim 0 of the inputs the size N. OUT.bin the app's outputs (output_0, output_1, ...) the same way. Fails (exit 1) when the element
counts differ, NaNs do not match, or max|ort - app| / max|app| > tol. --save writes onnxruntime's
outputs to ORT.bin, laid out as OUT.bin.
The onnxruntime-node package is loaded from $ONNXHOOK_ORT_DIR/node_modules (default: tests/ort).`;

function parseArgs(argv) {
  const opts = { tol: 1e-4, seed: 1 };
  const names = { '--model': 'model', '--in': 'in', '--expect': 'expect', '--tol': 'tol',
    '--gen-input': 'genInput', '--seed': 'seed', '--batch': 'batch', '--save': 'save' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      process.stderr.write(`ort-compare: bad argument '${argv[i]}'\n${USAGE}\n`);
      process.exit(2);
    }
    opts[key] = argv[++i];
  }
  const usage = (msg) => {
    process.stderr.write(`ort-compare: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  if (!opts.model) usage('--model is required');
  if (opts.genInput === undefined) {
    if (!opts.in || !opts.expect) usage('--in and --expect are required (or --gen-input)');
  } else if (opts.in || opts.expect) {
    usage('--gen-input does not take --in/--expect');
  }
  opts.tol = Number(opts.tol);
  if (!(opts.tol >= 0)) usage('--tol wants a non-negative number');
  opts.seed = Number(opts.seed);
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) usage('--seed wants a non-negative integer');
  if (opts.batch !== undefined) {
    opts.batch = Number(opts.batch);
    if (!Number.isSafeInteger(opts.batch) || opts.batch < 1) usage('--batch wants a positive integer');
    if (opts.genInput === undefined) usage('--batch goes with --gen-input');
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = common.loadOrt();
  const session = await common.createSession(ort, opts.model);
  const io = common.describeIo(session, opts.model);
  const inputs = common.ordered(io.inputs, 'input');
  const outputs = common.ordered(io.outputs, 'output');
  inputs.forEach((v) => common.checkFloat(v, 'input'));
  outputs.forEach((v) => common.checkFloat(v, 'output'));
  if (inputs.length === 0) die('the model has no inputs');
  if (outputs.length === 0) die('the model has no outputs');

  if (opts.genInput !== undefined) {
    if (opts.batch !== undefined) {
      inputs.forEach((v) => {
        if (Array.isArray(v.shape) && v.shape.length > 0 && typeof v.shape[0] === 'string') v.shape[0] = opts.batch;
      });
    }
    const data = common.genInput(inputs, opts.seed);
    common.writeFloats(opts.genInput, data);
    console.log(`ort-compare: wrote ${data.length} float32 values (seed ${opts.seed}) to ${opts.genInput} for ` +
                inputs.map((v) => `${v.name} ${common.fmtShape(v.shape)}`).join(', '));
    await session.release();
    return;
  }

  const inData = common.readFloats(opts.in, 'input');
  const expect = common.readFloats(opts.expect, 'expected output');
  const { feeds, shapes } = common.makeFeeds(ort, inputs, inData);

  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    die(`onnxruntime failed to run ${opts.model}: ${e.message}`);
  }
  const parts = outputs.map((v) => results[v.name]);
  parts.forEach((t, i) => {
    if (!t) die(`onnxruntime returned no '${outputs[i].name}'`);
    if (t.type !== 'float32') die(`output '${outputs[i].name}' has type ${t.type}`);
  });
  const got = parts.reduce((a, t) => a + t.data.length, 0);
  const desc = outputs.map((v, i) => `${v.name} [${parts[i].dims.join(',')}]`).join(', ');
  if (got !== expect.length) {
    die(`element count mismatch: onnxruntime produced ${got} (${desc}), the app wrote ${expect.length}`);
  }

  if (opts.save) {
    const all = new Float32Array(got);
    let off = 0;
    parts.forEach((t) => { all.set(t.data, off); off += t.data.length; });
    common.writeFloats(opts.save, all);
  }
  const r = common.compare(parts.map((t) => t.data), expect);
  console.log(`ort-compare: ${inputs.length} input(s) ${inputs.map((v, i) => `${v.name} [${shapes[i].join(',')}]`).join(', ')}; ` +
              `${outputs.length} output(s) ${desc}`);
  console.log(`ort-compare: ${got} values compared, max abs err ${r.maxAbs.toExponential(3)}, max |app| ` +
              `${r.maxRef.toExponential(3)}, rel err ${r.rel.toExponential(3)} (tol ${opts.tol})` +
              (r.nans ? `, ${r.nans} matching NaNs` : ''));
  await session.release();
  if (r.nanMismatch) {
    die(`${r.nanMismatch} NaN mismatch(es); first at flat index ${r.firstNan}: ort ${r.ortAt(r.firstNan)}, app ${r.appAt(r.firstNan)}`);
  }
  if (!(r.rel <= opts.tol)) {
    die(`mismatch: rel err ${r.rel.toExponential(3)} > tol ${opts.tol}; worst at flat index ${r.worst}: ` +
        `ort ${r.ortAt(r.worst)}, app ${r.appAt(r.worst)}`);
  }
  console.log('ort-compare: OK');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
