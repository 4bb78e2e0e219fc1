// Runs ONNX models with onnxruntime-web's WebAssembly backend in Node and writes what
// dev.qwtonnx.verify.runtime.RunResult reads: per model, OUT_DIR/model_<i>/result.txt and
// sample_<k>/output_<j>.npy. Same layout and records as the Java RunOutputs.
//
//   node run-outputs.mjs --modules=NODE_MODULES SAMPLES_DIR OUT_DIR MODEL...
//
// SAMPLES_DIR holds ONNX test-data sets (test_data_set_*/input_<i>.pb, TensorProto). One thread.
// The kernels are the nodes of the session's profile (enableProfiling) over one run: the graph
// onnxruntime-web actually runs after its optimizations.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
let modules = '.cache/npm/node_modules';
let profile = false;
const positional = [];
for (const a of args) {
  if (a.startsWith('--modules=')) modules = a.slice('--modules='.length);
  else if (a === '--profile') profile = true;
  else positional.push(a);
}
if (profile) positional.splice(1, 0, '');
if (positional.length < 3) {
  console.error('usage: node run-outputs.mjs --modules=NODE_MODULES SAMPLES_DIR OUT_DIR MODEL...');
  process.exit(2);
}
const [samplesDir, outDir, ...models] = positional;
const require = createRequire(path.join(path.resolve(modules), 'noop.js'));
const ortPath = require.resolve('onnxruntime-web');
const ortVersion = JSON.parse(fs.readFileSync(path.join(path.resolve(modules), 'onnxruntime-web', 'package.json'), 'utf8')).version;
const ort = await import(pathToFileURL(ortPath).href);
ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

// ONNX TensorProto element types -> onnxruntime-web tensor types and NumPy descriptors.
const TYPES = {
  1: ['float32', Float32Array, '<f4'], 2: ['uint8', Uint8Array, '|u1'], 3: ['int8', Int8Array, '|i1'],
  4: ['uint16', Uint16Array, '<u2'], 5: ['int16', Int16Array, '<i2'], 6: ['int32', Int32Array, '<i4'],
  7: ['int64', BigInt64Array, '<i8'], 9: ['bool', Uint8Array, '|b1'], 10: ['float16', Uint16Array, '<f2'],
  11: ['float64', Float64Array, '<f8'], 12: ['uint32', Uint32Array, '<u4'], 13: ['uint64', BigUint64Array, '<u8'],
};
const BY_NAME = Object.fromEntries(Object.entries(TYPES).map(([code, t]) => [t[0], t]));

// A minimal protobuf reader for TensorProto: dims (1), data_type (2), float_data (4), int32_data (5),
// int64_data (7), name (8), raw_data (9), double_data (10).
function readTensorProto(buf) {
  let pos = 0;
  const varint = () => {
    let r = 0n, shift = 0n, b;
    do { b = buf[pos++]; r |= BigInt(b & 0x7f) << shift; shift += 7n; } while (b & 0x80);
    return r;
  };
  const t = { dims: [], type: 0, name: '', raw: null, floats: [], ints: [], longs: [], doubles: [] };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >> 3, wire = key & 7;
    const packed = (read) => {
      if (wire !== 2) return [read()];
      const end = pos + Number(varint()); const out = [];
      while (pos < end) out.push(read());
      return out;
    };
    const f32 = () => { const v = buf.readFloatLE(pos); pos += 4; return v; };
    const f64 = () => { const v = buf.readDoubleLE(pos); pos += 8; return v; };
    if (field === 1) t.dims.push(...packed(() => BigInt.asIntN(64, varint())));
    else if (field === 2) t.type = Number(varint());
    else if (field === 4) t.floats.push(...packed(f32));
    else if (field === 5) t.ints.push(...packed(() => Number(BigInt.asIntN(32, varint()))));
    else if (field === 7) t.longs.push(...packed(() => BigInt.asIntN(64, varint())));
    else if (field === 10) t.doubles.push(...packed(f64));
    else if (field === 8 || field === 9) {
      const len = Number(varint()); const bytes = buf.subarray(pos, pos + len); pos += len;
      if (field === 8) t.name = bytes.toString('utf8'); else t.raw = bytes;
    } else if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 2) pos += Number(varint());
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  const type = TYPES[t.type];
  if (!type) throw new Error(`unsupported tensor element type ${t.type}`);
  const [name, Arr] = type;
  let data;
  if (t.raw) {
    const copy = new Uint8Array(t.raw); // aligned copy
    data = new Arr(copy.buffer, 0, copy.byteLength / Arr.BYTES_PER_ELEMENT);
  } else if (t.type === 1) data = Float32Array.from(t.floats);
  else if (t.type === 11) data = Float64Array.from(t.doubles);
  else if (t.type === 7) data = BigInt64Array.from(t.longs);
  else data = Arr.from(t.ints);
  return { name: t.name, tensor: new ort.Tensor(name, data, t.dims.map(Number)) };
}

function readSamples(dir, inputNames) {
  const sets = fs.readdirSync(dir).filter((n) => n.startsWith('test_data_set') && !n.startsWith('.')).sort();
  if (sets.length === 0) throw new Error(`no test_data_set_* folders in ${dir}`);
  return sets.map((set) => {
    const files = fs.readdirSync(path.join(dir, set)).filter((n) => /^input_\d+\.pb$/.test(n))
      .sort((a, b) => parseInt(a.slice(6), 10) - parseInt(b.slice(6), 10));
    const feeds = {};
    for (const f of files) {
      const i = parseInt(f.slice(6), 10);
      const { name, tensor } = readTensorProto(fs.readFileSync(path.join(dir, set, f)));
      const n = name || inputNames[i];
      if (inputNames.includes(n)) feeds[n] = tensor;
    }
    return { id: path.join(dir, set), feeds };
  });
}

function writeNpy(file, tensor) {
  const type = BY_NAME[tensor.type];
  if (!type) throw new Error(`cannot write a ${tensor.type} output as .npy`);
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const dict = `{'descr': '${type[2]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = (64 - ((10 + dict.length + 1) % 64)) % 64;
  const header = Buffer.from(dict + ' '.repeat(pad) + '\n', 'latin1');
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  const body = tensor.type === 'bool' ? Buffer.from(Uint8Array.from(d, (v) => (v ? 1 : 0)))
    : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, header, body]));
}

// The op types of the nodes one run executes, from the session profile. The wasm module writes the
// profile straight to file descriptor 1 when profiling ends, so a child process (this script with
// --profile) runs the model once and its standard output is read here.
function profiledKernels(model) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--modules=${modules}`, '--profile',
    samplesDir, model], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (child.status !== 0) return { why: `profiling failed: ${(child.stderr || '').trim().split('\n').pop()}` };
  const text = child.stdout;
  let events;
  try {
    events = JSON.parse(text.slice(text.indexOf('['), text.lastIndexOf(']') + 1));
  } catch (e) {
    return { why: 'the session profile onnxruntime-web printed is not JSON' };
  }
  const seen = new Map();
  for (const e of events) {
    if (e.cat === 'Node' && e.args && e.args.op_name) seen.set(e.args.node_index ?? e.name, e.args.op_name);
  }
  if (seen.size === 0) return { why: 'the session profile lists no nodes' };
  const counts = {};
  for (const op of seen.values()) counts[op] = (counts[op] || 0) + 1;
  return { counts };
}

if (profile) {
  const session = await ort.InferenceSession.create(models[0], { executionProviders: ['wasm'], enableProfiling: true });
  await session.run(readSamples(samplesDir, session.inputNames)[0].feeds);
  session.endProfiling();
  process.exit(0);
}

for (let m = 0; m < models.length; m++) {
  const out = path.join(outDir, `model_${m}`);
  fs.mkdirSync(out, { recursive: true });
  const session = await ort.InferenceSession.create(models[m], { executionProviders: ['wasm'] });
  const samples = readSamples(samplesDir, session.inputNames);
  const lines = [`engine\tonnxruntime-web ${ortVersion} wasm`];
  session.outputNames.forEach((n, j) => lines.push(`output\t${j}\t${n}`));
  const kernels = profiledKernels(models[m]);
  if (kernels.counts) Object.keys(kernels.counts).sort().forEach((op) => lines.push(`kernel\t${op}\t${kernels.counts[op]}`));
  else lines.push(`kernels-unavailable\t${kernels.why}`);
  await session.run(samples[0].feeds); // warm-up
  for (let k = 0; k < samples.length; k++) {
    const t0 = performance.now();
    const r = await session.run(samples[k].feeds);
    const ms = performance.now() - t0;
    lines.push(`latency\t${ms.toFixed(4)}\t${samples[k].id}`);
    const dir = path.join(out, `sample_${String(k).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    session.outputNames.forEach((n, j) => writeNpy(path.join(dir, `output_${j}.npy`), r[n]));
  }
  await session.release();
  fs.writeFileSync(path.join(out, 'result.txt'), lines.join('\n') + '\n');
}
