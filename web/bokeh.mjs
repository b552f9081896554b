// bokehlite in the browser: the web twin of libbokeh's API (android/native/include/bokeh.h).
//
//     import {openPipeline, decodePhoto} from './bokeh.mjs';
//     const pipeline = await openPipeline('models/bokeh_gpu_1024x1536.tflite');   // {accelerator: 'auto'}
//     const photo = await decodePhoto(file);                  // ImageData, EXIF orientation applied
//     const {imageData, timings} = await pipeline.render(photo);
//     pipeline.info;        // track, what ran where (WebGPU or wasm, and why not WebGPU), ms per step
//     pipeline.close();
//
// A pipeline is one exported model (.tflite with its sidecar .json beside it, or alone: the
// contract embedded in it), or a portrait model with the segmenter its contract names beside
// it. The host steps (letterbox fit, sampling back, Eq. 9, depth glue) are libbokeh's own C,
// compiled to WebAssembly (web/host.mjs); the models run on LiteRT.js, on WebGPU or on
// XNNPACK in WebAssembly.
//
// Never a silent wrong picture: on WebGPU the device's `uncapturederror` events and the
// outputs' finiteness are checked after every run; on a failure `auto` runs the model again
// on wasm and says why (info.fallback), and `webgpu` fails with the reason.
import {getGlobalLiteRt, loadAndCompile, loadLiteRt, setWebGpuDevice, supportsFeature, Tensor} from '@litertjs/core';
import {loadHost} from './host.mjs';
import {checkContract, ContractError, readContract} from './contract.mjs';
import {decodeDepthSamples} from './png.mjs';

export {ContractError};

export class BokehError extends Error {
  constructor(message, kind = 'runtime') {
    super(message);
    this.name = 'BokehError';
    this.kind = kind;        // 'model', 'photo', 'depth', 'accelerator', 'runtime'
  }
}

const now = () => performance.now();
const LITERT_WASM = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;

// ---- the runtime: LiteRT.js, the host steps and the WebGPU device, once per page -------------

let runtimePromise = null;

/**
 * Load LiteRT.js (threaded wasm when the page is cross-origin isolated), the host steps, and
 * a WebGPU device with the browser's default limits where there is one. Called by
 * openPipeline; options apply to the first call only:
 *   wasmDir: LiteRT.js's wasm folder (default: web/node_modules/@litertjs/core/wasm/)
 *   threads: false to load the single-threaded wasm build even where threads work
 *   webgpu: false never to ask for a WebGPU device
 *   limits: 'default' (WebGPU's default maxSampledTexturesPerShaderStage and the like, as
 *       a phone's browser gives them) or 'adapter' (ask for the adapter's own maxima)
 */
export function initRuntime(options = {}) {
  if (!runtimePromise) runtimePromise = startRuntime(options);
  return runtimePromise;
}

async function startRuntime(options) {
  const rt = {threaded: false, threadsReason: '', webgpu: null, webgpuReason: '', notes: []};
  const t0 = now();
  let threads = options.threads !== false;
  if (threads && !globalThis.crossOriginIsolated) {
    threads = false;
    rt.threadsReason = 'the page is not cross-origin isolated (bokeh-web sends the COOP/COEP headers; ' +
      'another server must too), so LiteRT.js runs single-threaded';
  } else if (threads && !(await supportsFeature('threads'))) {
    threads = false;
    rt.threadsReason = 'this browser lacks wasm threads or relaxed SIMD';
  } else if (!threads) {
    rt.threadsReason = 'single-threaded build asked for';
  }
  const [host] = await Promise.all([loadHost(), loadLiteRt(options.wasmDir || LITERT_WASM, {threads})]);
  rt.host = host;
  rt.threaded = threads;
  if (options.webgpu !== false) {
    try {
      const gpu = await openWebGpu(options.limits || 'default');
      setWebGpuDevice(gpu.device);
      rt.webgpu = gpu;
    } catch (e) {
      rt.webgpuReason = e.message;
    }
  } else {
    rt.webgpuReason = 'WebGPU turned off';
  }
  rt.loadMs = now() - t0;
  return rt;
}

async function openWebGpu(limits) {
  if (!globalThis.isSecureContext) {
    throw new Error('the page is not a secure context (http://<address>); WebGPU needs https or localhost');
  }
  if (!navigator.gpu) throw new Error('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await navigator.gpu.requestAdapter({powerPreference: 'high-performance'});
  if (!adapter) throw new Error('the browser offers no WebGPU adapter');
  // What LiteRT.js asks for itself (buffer sizes), and nothing more unless asked: the
  // default maxSampledTexturesPerShaderStage (16) is what a phone's browser may give.
  const want = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage',
    'maxTextureDimension2D'];
  if (limits === 'adapter') want.push('maxSampledTexturesPerShaderStage', 'maxStorageTexturesPerShaderStage');
  const requiredLimits = Object.fromEntries(want.map((k) => [k, adapter.limits[k]]));
  const requiredFeatures = ['shader-f16', 'subgroups'].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({requiredFeatures, requiredLimits});
  const info = adapter.info || {};
  const gpu = {
    device,
    adapter: {vendor: info.vendor || '', architecture: info.architecture || '', description: info.description || '',
      device: info.device || ''},
    features: requiredFeatures,
    maxSampledTextures: device.limits.maxSampledTexturesPerShaderStage,
    errors: [],
    lost: null,
  };
  device.addEventListener('uncapturederror', (e) => gpu.errors.push(e.error?.message || String(e.error)));
  device.lost.then((lost) => {
    gpu.lost = lost.message || 'the WebGPU device was lost';
  });
  return gpu;
}

// A WebGPU validation message's first part: Dawn appends the call chain (" - While ...").
const firstPart = (message) => String(message).split(/\s+-\s+While /)[0].trim();

// Errors the WebGPU device reported since `mark`, once the queue is idle and the events are in.
async function gpuErrorsSince(gpu, mark) {
  try {
    await gpu.device.queue.onSubmittedWorkDone();
  } catch (e) {
    // a lost device: reported below
  }
  await new Promise((r) => setTimeout(r, 0));
  const errors = gpu.errors.slice(mark).map(firstPart);
  if (gpu.lost) errors.push(gpu.lost);
  return errors;
}

// ---- pipelines -------------------------------------------------------------------------------

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new BokehError(`${what}: cannot fetch ${url} (${e.message})`, 'model');
  }
  if (!response.ok) throw new BokehError(`${what}: ${url} answered ${response.status} ${response.statusText}`, 'model');
  return new Uint8Array(await response.arrayBuffer());
}

function details(model) {
  return model.getInputDetails().map((d) => ({name: d.name, dtype: d.dtype, shape: Array.from(d.shape)}));
}

function outDetails(model) {
  return model.getOutputDetails().map((d) => ({name: d.name, dtype: d.dtype, shape: Array.from(d.shape)}));
}

// One compiled .tflite and where it runs.
class Runner {
  constructor(rt, name, bytes, options) {
    this.rt = rt;
    this.name = name;
    this.bytes = bytes;
    this.threads = options.threads;
    this.model = null;
    this.accelerator = null;
    this.fallback = '';
    this.compileMs = 0;
  }

  async compile(accelerator) {
    const t0 = now();
    const options = {accelerator};
    if (this.threads) options.cpuOptions = {numThreads: this.threads};
    const gpu = this.rt.webgpu;
    const mark = gpu ? gpu.errors.length : 0;
    let model;
    try {
      model = await loadAndCompile(this.bytes, options);
    } catch (e) {
      throw new BokehError(`${this.name}: LiteRT.js cannot compile it for ${accelerator} (${e.message || e})`,
        accelerator === 'webgpu' ? 'accelerator' : 'model');
    }
    this.compileMs += now() - t0;
    this.model = model;
    this.accelerator = model.options.accelerator;
    if (accelerator === 'webgpu') {
      if (this.accelerator !== 'webgpu') {
        // Without JSPI, LiteRT.js runs a model that WebGPU does not take whole on wasm, with
        // only a console warning: say so.
        return `not every op of ${this.name} runs on WebGPU, so LiteRT.js compiled it for wasm`;
      }
      const errors = await gpuErrorsSince(gpu, mark);
      if (errors.length) return `WebGPU failed compiling ${this.name}: ${errors[0]}`;
    }
    return '';
  }

  // Run once: {name: Float32Array}. On WebGPU, a device error or a value that is not finite
  // is a failure (returned as {failure}), never an output.
  async run(inputs, read) {
    const tensors = {};
    const gpu = this.accelerator === 'webgpu' ? this.rt.webgpu : null;
    const mark = gpu ? gpu.errors.length : 0;
    let outputs;
    try {
      for (const [name, [data, shape]] of Object.entries(inputs)) tensors[name] = new Tensor(data, shape);
      outputs = await this.model.run(tensors);
    } catch (e) {
      if (gpu) return {failure: `WebGPU failed running ${this.name}: ${e.message || e}`};
      throw new BokehError(`${this.name}: LiteRT.js failed running it (${e.message || e})`, 'runtime');
    } finally {
      for (const t of Object.values(tensors)) t.delete();
    }
    const values = {};
    try {
      for (const name of read) values[name] = await outputs[name].data();
    } finally {
      for (const t of Object.values(outputs)) t.delete();
    }
    if (gpu) {
      const errors = await gpuErrorsSince(gpu, mark);
      if (errors.length) return {failure: `WebGPU failed running ${this.name}: ${errors[0]}`};
    }
    for (const name of read) {
      const v = values[name];
      let bad = 0;
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) bad++;
      if (bad) {
        const what = `${this.name}: the model's ${name} output has ${bad} NaN or infinite value(s) of ${v.length}`;
        if (gpu) return {failure: `WebGPU gave wrong numbers: ${what}`};
        throw new BokehError(`${what}; nothing was drawn`, 'runtime');
      }
    }
    return {values};
  }

  delete() {
    if (this.model) this.model.delete();
    this.model = null;
  }
}

/**
 * Run one .tflite as it is, without a contract or host steps: the raw twin of
 * BokehRenderer.run_model, for checks (export/webgpu_check.py drives it through web/check.html).
 * inputs: {name: Float32Array}, or a function (input details [{name, shape}]) -> that.
 * options: accelerator ('webgpu' default, or 'wasm'), threads, and initRuntime's options.
 * Returns {outputs: {name: Float32Array}, shapes: {name: [..]}, accelerator, failure, compileMs,
 * runMs, maxSampledTextures}: failure is why WebGPU did not run it correctly (a device error,
 * a silent fallback to wasm, or NaN), else null. Nothing falls back: a check wants to know.
 */
export async function runModel(modelUrl, inputs, options = {}) {
  const rt = await initRuntime(options);
  const accelerator = options.accelerator || 'webgpu';
  const url = new URL(modelUrl, globalThis.location?.href).href;
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop());
  if (accelerator === 'webgpu' && !rt.webgpu) {
    return {outputs: null, shapes: null, accelerator: null, failure: `no WebGPU here: ${rt.webgpuReason}`,
      compileMs: 0, runMs: 0, maxSampledTextures: null};
  }
  const runner = new Runner(rt, name, await fetchBytes(url, name), {threads: rt.threaded ? options.threads : 1});
  try {
    const why = await runner.compile(accelerator);
    const base = {accelerator: runner.accelerator, compileMs: runner.compileMs,
      maxSampledTextures: rt.webgpu ? rt.webgpu.maxSampledTextures : null};
    if (why) return {...base, outputs: null, shapes: null, failure: why, runMs: 0};
    const inDetails = details(runner.model), outs = outDetails(runner.model);
    const given = typeof inputs === 'function' ? inputs(inDetails) : inputs;
    const feed = Object.fromEntries(inDetails.map((d) => [d.name, [given[d.name], d.shape]]));
    const t0 = now();
    const result = await runner.run(feed, outs.map((d) => d.name));
    const runMs = now() - t0;
    if (result.failure) return {...base, outputs: null, shapes: null, failure: result.failure, runMs};
    return {...base, outputs: result.values, shapes: Object.fromEntries(outs.map((d) => [d.name, d.shape])),
      failure: null, runMs};
  } finally {
    runner.delete();
  }
}

/** Where to run a model, and why not WebGPU: [accelerator, reason]. */
function choose(rt, contract, asked) {
  if (asked === 'wasm') return ['wasm', 'wasm asked for'];
  if (!rt.webgpu) return ['wasm', rt.webgpuReason || 'no WebGPU'];
  if (asked === 'webgpu') return ['webgpu', ''];
  // The export's WebGPU check (export/webgpu_check.py): a model it ran and found wrong stays on
  // wasm; one it could not run (no browser there) is tried, and watched, as any other.
  if (contract.webgpu && contract.webgpu.ran === true && contract.webgpu.ok !== true) {
    return ['wasm', `the export found it wrong on WebGPU: ${contract.webgpu.reason || 'see its sidecar'}`];
  }
  if (!contract.gpuVerified) return ['wasm', `the export did not verify it on a GPU (${contract.gpuNote})`];
  return ['webgpu', ''];
}

/**
 * Open a pipeline from a model URL.
 * options:
 *   accelerator: 'auto' (default: WebGPU where the export verified the model on a GPU and
 *       it runs correctly here, else wasm, with the reason in info.fallback), 'webgpu'
 *       (WebGPU or an error: no fallback) or 'wasm'
 *   threads: LiteRT.js CPU threads (default: LiteRT.js's, every core, when the page is
 *       cross-origin isolated; 1 otherwise)
 *   and initRuntime's options for the first pipeline of the page.
 */
export async function openPipeline(modelUrl, options = {}) {
  const asked = options.accelerator || 'auto';
  if (!['auto', 'webgpu', 'wasm'].includes(asked)) {
    throw new BokehError(`accelerator must be auto, webgpu or wasm, got ${asked}`, 'model');
  }
  const rt = await initRuntime(options);
  const t0 = now();
  const url = new URL(modelUrl, globalThis.location?.href).href;
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop());
  if (/_segmenter\.tflite$/.test(name)) {
    throw new BokehError(`${name} is the person segmenter of a portrait pipeline, not a bokeh model; open the ` +
      'portrait model beside it', 'model');
  }
  const bytes = await fetchBytes(url, name);
  if (bytes.byteLength === 0) throw new BokehError(`${name}: the model file is empty`, 'model');
  let contract;
  try {
    contract = await readContract(url, bytes);
  } catch (e) {
    if (e instanceof ContractError) throw new BokehError(e.message, 'model');
    throw e;
  }
  let segBytes = null;
  if (contract.sidecar.track === 'portrait') {
    const seg = contract.sidecar.segmenter;
    if (!seg || typeof seg.file !== 'string' || seg.file.includes('/')) {
      throw new BokehError(`${name}: the pipeline has no segmenter file, sha256 and input`, 'model');
    }
    segBytes = await fetchBytes(new URL(seg.file, url).href, `${name}: its segmenter ${seg.file} (copy the whole pipeline)`);
    if (globalThis.crypto?.subtle && typeof seg.sha256 === 'string') {
      const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', segBytes)),
        (b) => b.toString(16).padStart(2, '0')).join('');
      if (hex !== seg.sha256) {
        throw new BokehError(`${name}: ${seg.file} is not the segmenter this model was exported with (sha256 mismatch)`,
          'model');
      }
    }
  }
  const loadMs = now() - t0;
  const pipeline = new Pipeline(rt, name, url, contract, options);
  try {
    await pipeline._open(bytes, segBytes, asked, loadMs);
  } catch (e) {
    pipeline.close();
    throw e;
  }
  return pipeline;
}

class Pipeline {
  constructor(rt, name, url, contract, options) {
    this.rt = rt;
    this.name = name;
    this.url = url;
    this._read = contract;
    this.options = options;
    this.contract = null;
    this.model = null;
    this.segmenter = null;
    this.renders = 0;
    this.info = null;
    this._queue = Promise.resolve();
  }

  async _open(bytes, segBytes, asked, loadMs) {
    const rt = this.rt;
    const threads = rt.threaded ? this.options.threads : 1;
    this.model = new Runner(rt, this.name, bytes, {threads});
    if (segBytes) this.segmenter = new Runner(rt, this._read.sidecar.segmenter.file, segBytes, {threads});
    // The contract is checked against the signature whatever the accelerator: wasm first
    // when that is where it will run, else the WebGPU compile's own details.
    const gpu = this._read.sidecar.gpu_accelerator;
    const gpuVerified = gpu?.verified === true;
    const gpuNote = typeof gpu?.reason === 'string' ? gpu.reason : 'the contract records no verified run';
    if (asked === 'webgpu' && !gpuVerified) {
      // F9 (docs/contract.md): the line every front end gives (bokehlite/contract.py, gpu_refusal).
      throw new BokehError(`${this.name}: not for LiteRT's GPU accelerator: not verified there at export ` +
        `(${gpuNote}); the gpu track is the model for GPUs (export-tflite --track gpu); run this one on the CPU`,
      'accelerator');
    }
    const [first, reason] = choose(rt, {gpuVerified, gpuNote, webgpu: this._read.sidecar.webgpu}, asked);
    this.fallback = reason === 'wasm asked for' ? '' : reason;
    for (const runner of [this.model, this.segmenter].filter(Boolean)) {
      const why = await runner.compile(first);
      if (why) await this._toWasm(runner, why, asked);
    }
    try {
      this.contract = checkContract(this.name, this._read.sidecar, details(this.model.model), outDetails(this.model.model));
    } catch (e) {
      if (e instanceof ContractError) throw new BokehError(e.message, 'model');
      throw e;
    }
    if (this.segmenter) {
      const segIn = details(this.segmenter.model).find((d) => d.name === 'image');
      const segOut = outDetails(this.segmenter.model).find((d) => d.name === 'person');
      const [S1, S2] = this.contract.segmenter.size;
      if (!segIn || !segOut || segIn.shape.join() !== `1,${S1},${S2},3`) {
        throw new BokehError(`${this.name}: its segmenter does not take 'image' [1, ${S1}, ${S2}, 3] and give 'person'`,
          'model');
      }
    }
    this.info = {
      track: this.contract.track,
      inputSize: this.contract.inputSize,
      weights: this.contract.weights,
      precision: this.contract.precision,
      contract: this._read.source,
      verified: this._read.verified,
      notes: [...rt.notes, ...this._read.notes],
      loadMs,
      runtimeLoadMs: rt.loadMs,
      threaded: rt.threaded,
      threads: rt.threaded ? (this.options.threads || getGlobalLiteRt().liteRtWasm.getThreadCount()) : 1,
      threadsReason: rt.threadsReason,
      adapter: rt.webgpu ? rt.webgpu.adapter : null,
      maxSampledTextures: rt.webgpu ? rt.webgpu.maxSampledTextures : null,
      renders: 0,
    };
    this._updateInfo();
    if (this.contract.weights === 'untrained') {
      this.info.notes.push('untrained weights: a render blurs the whole photo (export with --checkpoint)');
    }
  }

  _updateInfo() {
    if (!this.info) return;
    this.info.accelerator = this.model.accelerator;
    this.info.segmenterAccelerator = this.segmenter ? this.segmenter.accelerator : null;
    this.info.fallback = this.fallback;
    this.info.compileMs = this.model.compileMs + (this.segmenter ? this.segmenter.compileMs : 0);
  }

  // The runner failed on WebGPU (why): recompile it on wasm under `auto`, fail under `webgpu`.
  async _toWasm(runner, why, asked) {
    if (asked === 'webgpu') throw new BokehError(`${why}. (accelerator 'webgpu' asked for: no fallback)`, 'accelerator');
    runner.delete();
    this.fallback = this.fallback ? `${this.fallback}; ${why}` : why;
    const again = await runner.compile('wasm');
    if (again) throw new BokehError(again, 'runtime');
  }

  async _run(runner, inputs, read) {
    let result = await runner.run(inputs, read);
    if (result.failure) {
      await this._toWasm(runner, result.failure, this.options.accelerator || 'auto');
      this._updateInfo();
      result = await runner.run(inputs, read);
    }
    return result.values;
  }

  /** True for a render-track model: render() needs options.disparity. */
  get needsDepth() {
    return this.contract.depthGuided;
  }

  /**
   * Render bokeh on an ImageData (any size of at least 2x2; a photo whose R, G and B are
   * equal everywhere is rendered as grey, as bokeh-render renders a grey photo). options:
   *   disparity: Float32Array (width x height, [0, 1], larger = nearer): render track only
   *   focus: in-focus disparity in [0, 1] (default: the median of the centre box, R8)
   *   aperture: blur radius in photo pixels per unit |disparity - focus| (default: the
   *       contract's; render and portrait tracks)
   * Returns {imageData, timings: {fitMs, segmenterMs, modelMs, blendMs, totalMs}, accelerator,
   *   focus, aperture, personShare, warning}. Renders are queued: one at a time.
   */
  render(imageData, options = {}) {
    const next = this._queue.then(() => this._render(imageData, options));
    this._queue = next.catch(() => {});
    return next;
  }

  async _render(image, options) {
    if (!this.model) throw new BokehError('the pipeline is closed', 'runtime');
    const c = this.contract, host = this.rt.host;
    const {width: w, height: h} = image;
    if (!(w >= 2 && h >= 2)) throw new BokehError(`the photo is ${w}x${h}; both sides must be at least 2 pixels`, 'photo');
    const t0 = now();
    const timings = {fitMs: 0, segmenterMs: 0, modelMs: 0, blendMs: 0, totalMs: 0};
    const [H, W] = c.inputSize;
    const box = host.letterbox(h, w, H, W);
    let aperture = null, focus = null;
    if (c.depthGuided || c.portrait) {
      aperture = options.aperture ?? c.host.defaultAperture;
      const largest = c.host.maxAperture / box.scale;
      if (!(Number.isFinite(aperture) && aperture >= 0 && aperture <= largest)) {
        throw new BokehError(`expected aperture in [0, ${+largest.toPrecision(6)}] photo pixels (the model's ` +
          `${c.host.maxAperture} at this photo's scale), got ${aperture}`, 'depth');
      }
    } else if (options.disparity || options.focus != null || options.aperture != null) {
      throw new BokehError(`this is a ${c.track}-track model and takes no disparity, focus or aperture; those need a ` +
        'render-track model (export-tflite --track render)', 'depth');
    }
    if (c.depthGuided) {
      const d = options.disparity;
      if (!(d instanceof Float32Array) || d.length !== w * h) {
        throw new BokehError('this is a depth-guided (render-track) model: it needs the photo\'s disparity map', 'depth');
      }
      focus = options.focus ?? host.centreFocus(d, h, w, c.host.centreBox);
      if (!(focus >= 0 && focus <= 1)) throw new BokehError(`expected focus in [0, 1], got ${focus}`, 'depth');
    } else if (c.portrait && (options.disparity || options.focus != null)) {
      throw new BokehError('a portrait model takes an aperture only: it derives the depth and the focus itself', 'depth');
    }
    const grey = isGrey(image.data);
    const colour = colourCopy(image.data, w, h, grey);
    const x = host.fitPhoto(colour, grey ? 1 : 3, h, w, H, W);
    const inputs = {image: [x, [1, H, W, 3]]};
    if (c.depthGuided) {
      inputs.disparity = [host.fitMap(options.disparity, h, w, H, W), [1, H, W, 1]];
      inputs.focus = [new Float32Array([focus]), [1, 1]];
      inputs.aperture = [new Float32Array([host.modelAperture(h, w, H, W, aperture)]), [1, 1]];
    }
    let person = null;
    if (c.portrait) {
      const [S1, S2] = c.segmenter.size;
      const segInput = host.fitImageF32(x, H, W, S1, S2);
      timings.fitMs = now() - t0;
      const t1 = now();
      person = (await this._run(this.segmenter, {image: [segInput, [1, S1, S2, 3]]}, ['person'])).person;
      timings.segmenterMs = now() - t1;
      inputs.person = [person, [1, S1, S2, 1]];
      inputs.aperture = [new Float32Array([host.modelAperture(h, w, H, W, aperture)]), [1, 1]];
    } else {
      timings.fitMs = now() - t0;
    }
    const t2 = now();
    const read = c.portrait ? [c.source, c.defocus, 'person_share'] : [c.source, c.defocus];
    const out = await this._run(this.model, inputs, read);
    timings.modelMs = now() - t2;
    const result = {timings, accelerator: this.model.accelerator, focus, aperture, personShare: null, warning: null};
    const t3 = now();
    let pixels;
    if (c.portrait) {
      result.personShare = out.person_share[0];
      if (result.personShare < c.host.minPerson) {
        result.warning = `no person found (${(100 * result.personShare).toFixed(1)}% of the photo); left unchanged`;
        pixels = new Uint8ClampedArray(image.data);
      }
    }
    if (!pixels) {
      const [, bh, bw] = c.sourceShape, [, dh, dw] = c.defocusShape;
      pixels = host.blend(image.data, w, h, grey, H, W, out[c.source], bh, bw, out[c.defocus], dh, dw, c.eta, c.tau);
    }
    timings.blendMs = now() - t3;
    timings.totalMs = now() - t0;
    result.imageData = new ImageData(pixels, w, h);
    this.renders++;
    this.info.renders = this.renders;
    this._updateInfo();
    return result;
  }

  /** R9, tap to focus: the median disparity of the focus window around column x, row y. */
  focusAt(disparity, width, height, x, y) {
    x = Math.floor(x);
    y = Math.floor(y);
    if (!(x >= 0 && y >= 0 && x < width && y < height)) {
      throw new BokehError(`focus point ${x},${y} is outside the ${width}x${height} photo`, 'depth');
    }
    const r = this.contract.host.focusWindow >> 1;
    for (let row = Math.max(0, y - r); row < Math.min(height, y + r + 1); row++) {
      for (let col = Math.max(0, x - r); col < Math.min(width, x + r + 1); col++) {
        const v = disparity[row * width + col];
        if (!(v >= 0 && v <= 1)) throw new BokehError(`expected disparity values in [0, 1], got ${v}`, 'depth');
      }
    }
    return this.rt.host.focusAt(disparity, height, width, x, y, this.contract.host.focusWindow);
  }

  /**
   * R7 + R10: a depth file's samples (8- or 16-bit grey, mw x mh) -> {disparity at the
   * photo's width x height, warnings}, as bokeh-render's --depth does.
   */
  disparityFromSamples(samples, mw, mh, width, height) {
    const host = this.rt.host, warnings = [];
    const {disparity, constant} = host.toDisparityU16(samples);
    if (constant) warnings.push('the depth map is constant, so the whole photo is one plane (disparity 0.5)');
    const fitted = host.fitDisparity(disparity, mh, mw, height, width, this.contract.host.ratioTolerance);
    if (fitted.stretched) {
      warnings.push(`the depth map's aspect ratio (${mw}x${mh}, ${(mw / mh).toFixed(3)}) differs from the photo's ` +
        `(${width}x${height}, ${(width / height).toFixed(3)}); stretched to fit${fitted.rotated ? ' (is it rotated?)' : ''}`);
    }
    return {disparity: fitted.disparity, warnings};
  }

  /** disparityFromSamples on a depth file (a grey 8- or 16-bit PNG, or an image the browser decodes). */
  async disparityFromFile(blob, width, height) {
    const map = await decodeDepthSamples(blob);
    return this.disparityFromSamples(map.samples, map.width, map.height, width, height);
  }

  close() {
    if (this.model) this.model.delete();
    if (this.segmenter) this.segmenter.delete();
    this.model = this.segmenter = null;
  }
}

function isGrey(rgba) {
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2]) return false;
  }
  return true;
}

// The photo's colour as packed RGB (or grey) bytes: what the letterbox fit resizes.
function colourCopy(rgba, w, h, grey) {
  const n = w * h, out = new Uint8Array(n * (grey ? 1 : 3));
  if (grey) {
    for (let i = 0; i < n; i++) out[i] = rgba[4 * i];
  } else {
    for (let i = 0; i < n; i++) {
      out[3 * i] = rgba[4 * i];
      out[3 * i + 1] = rgba[4 * i + 1];
      out[3 * i + 2] = rgba[4 * i + 2];
    }
  }
  return out;
}

/**
 * A photo file (File or Blob) -> ImageData, decoded by the browser with its EXIF orientation
 * applied and no colour conversion. BokehError('photo') when the browser cannot decode it.
 */
export async function decodePhoto(blob, name = blob.name || 'the photo') {
  if (!blob || blob.size === 0) throw new BokehError(`${name} is empty`, 'photo');
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none',
      imageOrientation: 'from-image'});
  } catch (e) {
    throw new BokehError(`${name} is not a photo this browser can decode (PNG, JPEG, WebP, ...)`, 'photo');
  }
  const {width, height} = bitmap;
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), {width, height});
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, width, height);
}

export {decodeDepthSamples};
