// One model, run as it is on WebGPU (or wasm) with inputs both sides can make without sending
// them: export/webgpu_check.py computes the same inputs in numpy (hashInputs), runs the Python
// LiteRT interpreter on them and compares. The outputs come back as one download: each
// output's float32 values, in the order of window.bokehCheck.names (empty when it failed).
//
//     check.html?model=models/NAME.tflite&accelerator=webgpu&seed=0&limits=default
import {runModel} from './bokeh.mjs';

const params = new URLSearchParams(location.search);
const state = (s) => {
  document.body.dataset.state = s;
};

// A counter-based hash (murmur3's finaliser) of (index, seed): uint32 arithmetic that numpy
// reproduces exactly; 24 bits of it as a float32 in [0, 1).
export function hashValues(n, seed) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = (Math.imul(i, 0x9e3779b1) + Math.imul(seed, 0x85ebca6b) + 0x27d4eb2f) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    out[i] = (h >>> 8) / 16777216;
  }
  return out;
}

// Inputs in sorted name order get seeds seed, seed + 1, ...; every value in [0, 1), the
// aperture (a blur radius in model pixels) times 40.
export function hashInputs(inputDetails, seed) {
  const names = inputDetails.map((d) => d.name).sort();
  const inputs = {};
  for (const d of inputDetails) {
    const n = d.shape.reduce((a, b) => a * b, 1);
    const v = hashValues(n, seed + names.indexOf(d.name));
    if (d.name === 'aperture') for (let i = 0; i < n; i++) v[i] *= 40;
    inputs[d.name] = v;
  }
  return inputs;
}

// The outputs button downloads whatever there is, an empty file when the model did not run
// through, so that a checker can ask for the check and the outputs in one page load.
function offerOutputs(parts) {
  const button = document.getElementById('save-outputs');
  button.onclick = () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob(parts));
    a.download = 'outputs.bin';
    a.click();
  };
  button.disabled = false;
}

window.bokehCheck = {done: false};
try {
  const seed = Number(params.get('seed') || 0);
  const r = await runModel(params.get('model'), (details) => hashInputs(details, seed), {
    accelerator: params.get('accelerator') || 'webgpu', limits: params.get('limits') || 'default',
    threads: params.get('threads') ? Number(params.get('threads')) : undefined,
  });
  const names = r.outputs ? Object.keys(r.outputs).sort() : [];
  window.bokehCheck = {done: true, error: null, failure: r.failure, accelerator: r.accelerator, names,
    shapes: r.shapes, compileMs: r.compileMs, runMs: r.runMs, maxSampledTextures: r.maxSampledTextures};
  offerOutputs(names.map((k) => r.outputs[k]));
  document.getElementById('report').textContent = JSON.stringify(window.bokehCheck, null, 1);
  state('done');
} catch (e) {
  window.bokehCheck = {done: true, error: e.message || String(e)};
  offerOutputs([]);
  document.getElementById('report').textContent = window.bokehCheck.error;
  state('error');
}
