// A model's contract in the page (docs/contract.md): the sidecar JSON beside the .tflite,
// else the copy export-tflite embedded in the model, checked as runtime/sidecar.py and
// libbokeh's contract.c check it.
//
// LiteRT.js exposes neither the model's metadata buffers nor its TFLite Model Metadata
// (its LiteRtModel has signatures and tensor types only), so the embedded copy is read
// here from the model's bytes: the flatbuffer's Model.metadata entry "bokehlite_contract"
// names a buffer holding the contract's JSON (what libbokeh reads with
// LiteRtGetModelMetadata). The same JSON is also the associated file
// bokehlite_contract.json in the ZIP after the model; the buffer needs no unzipping.

export const SIDECAR_FORMAT = 'bokehlite-tflite';
export const SIDECAR_VERSION = 2;
export const CONTRACT_METADATA_KEY = 'bokehlite_contract';
export const CONTRACT_FILE = 'bokehlite_contract.json';
export const TRACK_INPUTS = {
  cpu: ['image'],
  gpu: ['image'],
  render: ['image', 'disparity', 'focus', 'aperture'],
  portrait: ['image', 'person', 'aperture'],
};

export class ContractError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ContractError';
  }
}

// ---- the flatbuffer, just enough of it ------------------------------------------------------

function table(view, pos) {
  const vtable = pos - view.getInt32(pos, true);
  const vsize = view.getUint16(vtable, true);
  return {
    // Byte position of field `slot`, or 0 when absent.
    field(slot) {
      const at = 4 + 2 * slot;
      if (at >= vsize) return 0;
      const off = view.getUint16(vtable + at, true);
      return off ? pos + off : 0;
    },
  };
}

function deref(view, at) {
  return at + view.getUint32(at, true);
}

function vector(view, at) {
  const start = deref(view, at);
  return {length: view.getUint32(start, true), start: start + 4};
}

function string(view, at) {
  const v = vector(view, at);
  return new TextDecoder().decode(new Uint8Array(view.buffer, view.byteOffset + v.start, v.length));
}

/** The bytes of the model's metadata buffer `name` (Model.metadata), or null when it has none. */
export function metadataBuffer(bytes, name) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') {
    throw new ContractError('not a TFLite model (no TFL3 identifier); give the .tflite that export-tflite wrote');
  }
  try {
    const model = table(view, deref(view, 0));
    const metaAt = model.field(6), buffersAt = model.field(4);    // Model.metadata, Model.buffers
    if (!metaAt || !buffersAt) return null;
    const metadata = vector(view, metaAt), buffers = vector(view, buffersAt);
    for (let i = 0; i < metadata.length; i++) {
      const entryAt = metadata.start + 4 * i;
      const entry = table(view, deref(view, entryAt));
      const nameAt = entry.field(0);
      if (!nameAt || string(view, nameAt) !== name) continue;
      const indexAt = entry.field(1);
      const index = indexAt ? view.getUint32(indexAt, true) : 0;
      if (index >= buffers.length) throw new Error(`buffer ${index} of ${buffers.length}`);
      const buffer = table(view, deref(view, buffers.start + 4 * index));
      const dataAt = buffer.field(0), offsetAt = buffer.field(1), sizeAt = buffer.field(2);
      if (dataAt) {
        const data = vector(view, dataAt);
        return bytes.subarray(data.start, data.start + data.length);
      }
      // Buffers of a model over 2 GB sit after the flatbuffer: offset and size.
      const offset = offsetAt ? Number(view.getBigUint64(offsetAt, true)) : 0;
      const size = sizeAt ? Number(view.getBigUint64(sizeAt, true)) : 0;
      if (offset > 1 && offset + size <= bytes.byteLength) return bytes.subarray(offset, offset + size);
      return new Uint8Array(0);
    }
    return null;
  } catch (e) {
    if (e instanceof ContractError) throw e;
    throw new ContractError(`the model's flatbuffer is damaged (${e.message})`);
  }
}

/** The contract embedded in the model, or null when it carries none. */
export function embeddedContract(bytes, where) {
  const data = metadataBuffer(bytes, CONTRACT_METADATA_KEY);
  if (data === null) return null;
  let json;
  try {
    json = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(data));
  } catch (e) {
    throw new ContractError(`${where}: the embedded ${CONTRACT_METADATA_KEY} is not valid JSON (${e.message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new ContractError(`${where}: the embedded ${CONTRACT_METADATA_KEY} must be a JSON object`);
  }
  return json;
}

/** The sidecar URL of a model URL: the same name, .json. */
export function sidecarUrl(modelUrl) {
  const u = new URL(modelUrl, globalThis.location?.href);
  u.pathname = u.pathname.replace(/\.tflite$/, '') + '.json';
  return u.href;
}

async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;     // not a secure context (http://<address> on a phone)
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The model's contract: its sidecar when the server has one, else the embedded copy.
 * Returns {sidecar, source: 'sidecar' | 'embedded', verified: true | false | null, notes}.
 */
export async function readContract(modelUrl, bytes, fetchFn = fetch) {
  const name = decodeURIComponent(new URL(modelUrl, globalThis.location?.href).pathname.split('/').pop());
  const url = sidecarUrl(modelUrl);
  const notes = [];
  let response;
  try {
    response = await fetchFn(url);
  } catch (e) {
    response = null;
  }
  let sidecar, source;
  if (response && response.ok) {
    const text = await response.text();
    try {
      sidecar = JSON.parse(text);
    } catch (e) {
      throw new ContractError(`${name}: its sidecar JSON is not valid JSON (${e.message})`);
    }
    if (!sidecar || typeof sidecar !== 'object' || Array.isArray(sidecar)) {
      throw new ContractError(`${name}: its sidecar must be a JSON object`);
    }
    source = 'sidecar';
  } else {
    sidecar = embeddedContract(bytes, name);
    if (sidecar === null) {
      throw new ContractError(`${name} has no contract: no sidecar JSON beside it, and the model carries no embedded ` +
        `contract (metadata '${CONTRACT_METADATA_KEY}'). export-tflite writes both: copy the .json with the ` +
        '.tflite, or export it again');
    }
    source = 'embedded';
  }
  checkIdentity(name, sidecar);
  let verified = null;
  if (typeof sidecar.sha256 === 'string') {
    const hex = await sha256Hex(bytes);
    if (hex === null) {
      notes.push('sha256 not checked: the page is not in a secure context (open it as localhost or https)');
    } else if (hex !== sidecar.sha256) {
      throw new ContractError(`${name}: the sidecar JSON belongs to a different .tflite (sha256 mismatch); copy the ` +
        'model and its sidecar from the same export');
    } else {
      verified = true;
    }
  }
  return {sidecar, source, verified, notes};
}

function checkIdentity(name, s) {
  if (s.format !== SIDECAR_FORMAT) {
    throw new ContractError(`${name}: sidecar format is ${JSON.stringify(s.format)}, expected '${SIDECAR_FORMAT}'`);
  }
  if (s.version !== SIDECAR_VERSION) {
    throw new ContractError(`${name}: sidecar version ${JSON.stringify(s.version)} is not supported (this page reads ` +
      `version ${SIDECAR_VERSION}; export it again)`);
  }
  if (!(s.track in TRACK_INPUTS)) {
    throw new ContractError(`${name}: track ${JSON.stringify(s.track)} is not supported (supported: ` +
      `${Object.keys(TRACK_INPUTS).join(', ')})`);
  }
}

const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const sameList = (a, b) => Array.isArray(a) && a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Check the sidecar against the compiled model's signature (LiteRT.js input and output
 * details: {name, dtype, shape}) and return what the host steps need.
 */
export function checkContract(name, s, inputs, outputs) {
  const fail = (m) => {
    throw new ContractError(`${name}: ${m}`);
  };
  const track = s.track;
  const size = s.input_size;
  if (!(Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0))) {
    fail(`input_size must be [H, W] with positive integers, got ${JSON.stringify(size)}`);
  }
  const [H, W] = size;
  const wanted = TRACK_INPUTS[track];
  if (!Array.isArray(s.inputs) || !sameList(s.inputs.map((i) => i?.name).sort(), [...wanted].sort())) {
    fail(`sidecar inputs do not match the ${track} track's (${wanted.join(', ')})`);
  }
  const byName = (list) => Object.fromEntries(list.map((t) => [t.name, t]));
  const modelIn = byName(inputs), modelOut = byName(outputs);
  if (!sameList(Object.keys(modelIn).sort(), [...wanted].sort())) {
    fail(`signature inputs are ${Object.keys(modelIn).sort().join(', ')}, expected ${[...wanted].sort().join(', ')}`);
  }
  for (const spec of s.inputs) {
    const t = modelIn[spec.name];
    if (t.dtype !== 'float32') fail(`input '${spec.name}' is ${t.dtype} in the model, expected float32`);
    if (!sameList(Array.from(t.shape), spec.shape)) {
      fail(`input '${spec.name}' has shape [${Array.from(t.shape)}] in the model, the sidecar says ` +
        `${JSON.stringify(spec.shape)}`);
    }
  }
  if (!Array.isArray(s.outputs) || !s.outputs.every((o) => typeof o?.name === 'string')) {
    fail('sidecar outputs must be a list of objects with a name');
  }
  if (!sameList(s.outputs.map((o) => o.name).sort(), Object.keys(modelOut).sort())) {
    fail(`signature outputs are ${Object.keys(modelOut).sort().join(', ')}, the sidecar declares ` +
      `${s.outputs.map((o) => o.name).sort().join(', ')}`);
  }
  const shapes = {};
  for (const o of s.outputs) {
    const t = modelOut[o.name];
    if (o.dtype !== 'float32' || t.dtype !== 'float32') fail(`output '${o.name}' must be float32`);
    if (!sameList(Array.from(t.shape), o.shape)) {
      fail(`output '${o.name}' has shape [${Array.from(t.shape)}] in the model, the sidecar says ${JSON.stringify(o.shape)}`);
    }
    shapes[o.name] = o.shape;
  }
  const post = s.postprocess;
  if (!post || typeof post !== 'object') fail("sidecar has no 'postprocess'");
  if (post.blend === 'none') {
    fail('is a bokeh-only model (export-tflite --outputs bokeh): it has no defocus map for the full-resolution ' +
      'blend, so the page does not take it (bokeh-render does); export it with every output');
  }
  if (post.blend !== 'eq9') fail(`postprocess blend ${JSON.stringify(post.blend)} is not supported (expected 'eq9')`);
  for (const [role, channels] of [['source', 3], ['defocus', 1]]) {
    const out = post[role], shape = shapes[out];
    if (!shape) fail(`postprocess ${role} ${JSON.stringify(out)} is not one of the outputs`);
    if (shape.length !== 4 || shape[0] !== 1 || shape[3] !== channels) {
      fail(`output '${out}' must have shape [1, h, w, ${channels}]`);
    }
    if (H % shape[1] || W % shape[2] || H / shape[1] !== W / shape[2]) {
      fail(`output '${out}' is not the input ${H}x${W} divided by one integer factor`);
    }
  }
  if (!isNumber(post.eta) || !isNumber(post.tau)) fail('postprocess eta and tau must be finite numbers');
  const host = s.host;
  if (!host || typeof host !== 'object') fail("the sidecar has no 'host' block (the host steps' numbers); export it again");
  const num = (key, lo, hi, what) => {
    const v = host[key];
    if (!(isNumber(v) && v >= lo && v <= hi)) fail(`host ${key} must be a number ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const window = num('focus_window', 1, 1001, 'from 1 to 1001');
  if (!Number.isInteger(window) || window % 2 === 0) fail(`host focus_window must be an odd integer, got ${window}`);
  const centreBox = num('centre_box', 0, 1, 'in (0, 1]');
  if (centreBox <= 0) fail(`host centre_box must be a number in (0, 1], got ${centreBox}`);
  const aperture = s.inputs.find((i) => i.name === 'aperture');
  const maxAperture = aperture && Array.isArray(aperture.range) ? aperture.range[1] : 0;
  if (wanted.includes('aperture') && !(maxAperture > 0)) fail('the sidecar gives the aperture input no range');
  let segmenter = null;
  if (track === 'portrait') {
    const seg = s.segmenter;
    if (!seg || typeof seg.file !== 'string' || typeof seg.sha256 !== 'string' || seg.file.includes('/') || !seg.input) {
      fail('the pipeline has no segmenter file, sha256 and input');
    }
    segmenter = {file: seg.file, sha256: seg.sha256, size: [seg.input.shape[1], seg.input.shape[2]]};
  }
  const gpu = s.gpu_accelerator && typeof s.gpu_accelerator === 'object' ? s.gpu_accelerator : {};
  const webgpu = s.webgpu && typeof s.webgpu === 'object' ? s.webgpu : null;
  return {
    track,
    inputSize: [H, W],
    inputs: wanted,
    source: post.source,
    defocus: post.defocus,
    sourceShape: shapes[post.source],
    defocusShape: shapes[post.defocus],
    eta: post.eta,
    tau: post.tau,
    depthGuided: track === 'render',
    portrait: track === 'portrait',
    weights: typeof s.weights === 'string' ? s.weights : 'unknown',
    precision: typeof s.precision === 'string' ? s.precision : 'unknown',
    gpuVerified: gpu.verified === true,
    gpuNote: typeof gpu.reason === 'string' ? gpu.reason : 'the sidecar records no verified GPU run',
    webgpu,
    segmenter,
    host: {
      defaultAperture: num('default_aperture', 0, Infinity, '>= 0'),
      minPerson: num('min_person', 0, 1, 'in [0, 1]'),
      focusWindow: window,
      centreBox,
      ratioTolerance: num('ratio_tolerance', 0, Infinity, '>= 0'),
      maxAperture,
    },
  };
}
