// SPDX-License-Identifier: MIT
// Runs a model traced with ONNXHOOK_DEBUG_OUTPUTS=1 in onnxruntime and holds every layer_<i> output
// against darknet-run's --dump-layers file DIR/layer_<i>.bin (and the heads against --expect).
'use strict';

const fs = require('fs');
const path = require('path');
const common = require('../ort-common');

common.setTool('compare-layers');
const { die } = common;

const USAGE = `usage:
  node compare-layers.js --model M.onnx --in IN.bin --layers DIR [--expect OUT.bin] [--tol 1e-4]
                         [--head-tol T] [--show N]
M.onnx: traced with ONNXHOOK_DEBUG_OUTPUTS=1 (outputs output_0.., then layer_<i>..).
IN.bin: the model's inputs back to back, raw little-endian float32.
DIR: darknet-run --dump-layers output, one DIR/layer_<i>.bin per layer (l.output, raw float32).
OUT.bin: the app's --out file: the heads (output_0, output_1, ...) back to back.
Per layer, max|ort - app| / max|app| must be <= tol (NaN only against NaN); the heads together
likewise with --head-tol (default: tol). Prints the --show (default 5) worst layers; on failure
lists every layer over tol. Exit 0 OK, 1 mismatch or error, 2 usage.`;

function parseArgs(argv) {
  const opts = { tol: 1e-4, show: 5 };
  const names = { '--model': 'model', '--in': 'in', '--layers': 'layers', '--expect': 'expect',
    '--tol': 'tol', '--head-tol': 'headTol', '--show': 'show' };
  const usage = (msg) => {
    process.stderr.write(`compare-layers: ${msg}\n${USAGE}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) usage(`bad argument '${argv[i]}'`);
    opts[key] = argv[++i];
  }
  if (!opts.model || !opts.in || !opts.layers) usage('--model, --in and --layers are required');
  opts.tol = Number(opts.tol);
  if (!(opts.tol >= 0)) usage('--tol wants a non-negative number');
  opts.headTol = opts.headTol === undefined ? opts.tol : Number(opts.headTol);
  if (!(opts.headTol >= 0)) usage('--head-tol wants a non-negative number');
  opts.show = Number(opts.show);
  if (!Number.isSafeInteger(opts.show) || opts.show < 0) usage('--show wants a non-negative integer');
  return opts;
}

const fmt = (x) => (Number.isFinite(x) ? x.toExponential(3) : String(x));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = common.loadOrt();
  if (!fs.statSync(opts.layers, { throwIfNoEntry: false })?.isDirectory()) {
    die(`layer dump directory ${opts.layers} does not exist`);
  }
  const session = await common.createSession(ort, opts.model);
  const io = common.describeIo(session, opts.model);
  const inputs = common.ordered(io.inputs, 'input');
  inputs.forEach((v) => common.checkFloat(v, 'input'));
  if (inputs.length === 0) die('the model has no inputs');

  const headRe = /^output_(\d+)$/;
  const layerRe = /^layer_(\d+)$/;
  const heads = io.outputs.filter((v) => headRe.test(v.name))
    .sort((a, b) => Number(headRe.exec(a.name)[1]) - Number(headRe.exec(b.name)[1]));
  const layers = io.outputs.filter((v) => layerRe.test(v.name))
    .sort((a, b) => Number(layerRe.exec(a.name)[1]) - Number(layerRe.exec(b.name)[1]));
  const others = io.outputs.filter((v) => !headRe.test(v.name) && !layerRe.test(v.name));
  heads.concat(layers).forEach((v) => common.checkFloat(v, 'output'));
  if (layers.length === 0) {
    die(`${opts.model} has no layer_<i> outputs: was it traced with ONNXHOOK_DEBUG_OUTPUTS=1?`);
  }

  const inData = common.readFloats(opts.in, 'input');
  const { feeds } = common.makeFeeds(ort, inputs, inData);
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    die(`onnxruntime failed to run ${opts.model}: ${e.message}`);
  }

  const failures = [];
  // --- heads: the usual rule over all of them at once ---
  if (opts.expect !== undefined) {
    const expect = common.readFloats(opts.expect, 'expected output');
    const parts = heads.map((v) => {
      const t = results[v.name];
      if (!t) die(`onnxruntime returned no '${v.name}'`);
      return t.data;
    });
    const got = parts.reduce((a, d) => a + d.length, 0);
    const desc = heads.map((v) => `${v.name} [${results[v.name].dims.join(',')}]`).join(', ');
    if (got !== expect.length) {
      failures.push(`heads: onnxruntime produced ${got} values (${desc}), the app wrote ${expect.length}`);
    } else {
      const r = common.compare(parts, expect);
      console.log(`compare-layers: heads ${desc}: rel err ${fmt(r.rel)} (max abs err ${fmt(r.maxAbs)}, ` +
                  `max |app| ${fmt(r.maxRef)}, tol ${opts.headTol})`);
      if (r.nanMismatch) {
        failures.push(`heads: ${r.nanMismatch} NaN mismatch(es), first at flat index ${r.firstNan}: ` +
                      `ort ${r.ortAt(r.firstNan)}, app ${r.appAt(r.firstNan)}`);
      } else if (!(r.rel <= opts.headTol)) {
        failures.push(`heads: rel err ${fmt(r.rel)} > ${opts.headTol}; worst at flat index ${r.worst}: ` +
                      `ort ${r.ortAt(r.worst)}, app ${r.appAt(r.worst)}`);
      }
    }
  }

  // --- every layer ---
  const rows = [];
  for (const v of layers) {
    const idx = Number(layerRe.exec(v.name)[1]);
    const t = results[v.name];
    if (!t) die(`onnxruntime returned no '${v.name}'`);
    const file = path.join(opts.layers, `layer_${idx}.bin`);
    if (!fs.existsSync(file)) {
      failures.push(`${v.name}: the app dumped no ${file}`);
      continue;
    }
    const app = common.readFloats(file, 'layer dump');
    const shape = `[${t.dims.join(',')}]`;
    if (app.length !== t.data.length) {
      failures.push(`${v.name} ${shape}: onnxruntime has ${t.data.length} values, the app's l.output ${app.length}`);
      continue;
    }
    const r = common.compare([t.data], app);
    const row = { name: v.name, idx, shape, r };
    rows.push(row);
    if (r.nanMismatch) {
      failures.push(`${v.name} ${shape}: ${r.nanMismatch} NaN mismatch(es), first at ${r.firstNan}: ` +
                    `ort ${r.ortAt(r.firstNan)}, app ${r.appAt(r.firstNan)}`);
    } else if (!(r.rel <= opts.tol)) {
      failures.push(`${v.name} ${shape}: rel err ${fmt(r.rel)} > ${opts.tol} (max abs err ${fmt(r.maxAbs)}, ` +
                    `max |app| ${fmt(r.maxRef)}; worst at ${r.worst}: ort ${r.ortAt(r.worst)}, app ${r.appAt(r.worst)})`);
    }
  }
  await session.release();

  const dumped = fs.readdirSync(opts.layers).map((f) => /^layer_(\d+)\.bin$/.exec(f)).filter(Boolean)
    .map((m) => Number(m[1])).sort((a, b) => a - b);
  const covered = new Set(layers.map((v) => Number(layerRe.exec(v.name)[1])));
  const missing = dumped.filter((i) => !covered.has(i));
  const worst = [...rows].sort((a, b) => (b.r.nanMismatch - a.r.nanMismatch) || (b.r.rel - a.r.rel) ||
                                         (a.idx - b.idx));
  console.log(`compare-layers: ${rows.length} layer output(s) compared with ${opts.layers} (tol ${opts.tol}); ` +
              `worst:`);
  for (const w of worst.slice(0, opts.show)) {
    console.log(`compare-layers:   ${w.name.padEnd(10)} ${w.shape.padEnd(18)} rel err ${fmt(w.r.rel)}  ` +
                `max abs err ${fmt(w.r.maxAbs)}  max |app| ${fmt(w.r.maxRef)}` +
                (w.r.nans ? `  ${w.r.nans} matching NaNs` : '') + (w.r.nanMismatch ? '  NaN MISMATCH' : ''));
  }
  if (missing.length) {
    console.log(`compare-layers: ${missing.length} dumped layer(s) without a debug output (heads, or no node): ` +
                missing.map((i) => `layer_${i}`).join(' '));
  }
  if (others.length) {
    console.log(`compare-layers: ${others.length} other output(s) not compared: ` +
                others.map((v) => v.name).slice(0, 20).join(' '));
  }
  if (failures.length) {
    process.stderr.write(`compare-layers: error: ${failures.length} mismatch(es):\n` +
                         failures.map((f) => `  ${f}\n`).join(''));
    process.exit(1);
  }
  console.log('compare-layers: OK');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
