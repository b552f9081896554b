// The page: pick a model from the folder bokeh-web serves, open a photo (or drop one), see
// the bokeh; tap to focus and drag the aperture (render track), compare before and after,
// save. Everything runs here, in the browser, through web/bokeh.mjs.
//
// URL parameters (also how the tests drive it): model=<file in the models folder>,
// accelerator=auto|webgpu|wasm, threads=N, limits=default|adapter, wasm-threads=0.
import {decodePhoto, openPipeline} from './bokeh.mjs';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ui = {
  model: $('model'), accelerator: $('accelerator'), photo: $('photo'), depth: $('depth'),
  depthField: $('depth-field'), aperture: $('aperture'), apertureField: $('aperture-field'),
  apertureValue: $('aperture-value'), error: $('error'), warning: $('warning'), stage: $('stage'),
  frame: $('frame'), before: $('before'), after: $('after'), split: $('split'), marker: $('marker'),
  compare: $('compare'), save: $('save'), acceleratorLine: $('accelerator-line'), timingLine: $('timing-line'),
  hint: $('hint'),
};

// What the page holds; window.bokehPage lets a test (or a curious user) look.
const page = {
  pipeline: null, openError: null, photo: null, photoName: null, disparity: null, depthWarnings: [], focus: null,
  aperture: null, result: null, error: null, renders: 0, models: [],
};
window.bokehPage = page;

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  page.error = message;
  ui.error.textContent = message;
  ui.error.hidden = false;
  setState('error');
}

function clearError() {
  page.error = null;
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function showWarning(lines) {
  const text = lines.filter(Boolean).join(' · ');
  ui.warning.textContent = text;
  ui.warning.hidden = !text;
}

// Nothing may fail silently: whatever escapes the handlers below is shown too.
window.addEventListener('error', (e) => showError(`Something went wrong: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => showError(`Something went wrong: ${e.reason?.message || e.reason}`));

const clean = (s) => String(s).replace(/[.\s]+$/, '');
const ms = (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;

function describeAccelerator() {
  const p = page.pipeline;
  if (!p) return;
  const i = p.info;
  const where = (a) => (a === 'webgpu' ? 'WebGPU' : 'wasm');
  let text = `Ran on ${where(i.accelerator)}`;
  if (i.accelerator === 'webgpu' && i.adapter) {
    const name = [i.adapter.vendor, i.adapter.architecture, i.adapter.description].filter(Boolean).join(' ');
    if (name) text += ` (${name})`;
  } else {
    text += i.threaded ? ` (${i.threads} threads)` : ' (1 thread)';
  }
  if (i.segmenterAccelerator) text += `; segmenter on ${where(i.segmenterAccelerator)}`;
  if (i.accelerator !== 'webgpu') {
    text += `. Not WebGPU: ${clean(i.fallback || 'wasm asked for')}`;
  } else if (i.segmenterAccelerator && i.segmenterAccelerator !== 'webgpu' && i.fallback) {
    text += `. Segmenter not on WebGPU: ${clean(i.fallback)}`;
  }
  if (!i.threaded && i.threadsReason && i.accelerator !== 'webgpu') text += `. Single-threaded: ${clean(i.threadsReason)}`;
  ui.acceleratorLine.textContent = text + '.';
}

function describeTimings(result) {
  const t = result.timings, i = page.pipeline.info;
  const parts = [`fit ${ms(t.fitMs)}`];
  if (i.track === 'portrait') parts.push(`segmenter ${ms(t.segmenterMs)}`);
  parts.push(`model ${ms(t.modelMs)}`, `blend ${ms(t.blendMs)}`, `total ${ms(t.totalMs)}`);
  ui.timingLine.textContent = `${parts.join(' · ')}  (load ${ms(i.loadMs)}, compile ${ms(i.compileMs)})`;
}

// ---- models ----------------------------------------------------------------------------------

async function listModels() {
  if (params.get('model-url')) return [{file: params.get('model-url'), track: null, url: params.get('model-url')}];
  let response;
  try {
    response = await fetch('models/index.json');
  } catch (e) {
    throw new Error(`cannot reach the server for the model list (${e.message})`);
  }
  if (!response.ok) {
    throw new Error('no model list at models/index.json: open this page through bokeh-web --models DIR');
  }
  const {models} = await response.json();
  return models.map((m) => ({...m, url: `models/${encodeURIComponent(m.file)}`}));
}

function modelLabel(m) {
  const size = m.input_size ? ` ${m.input_size[0]}x${m.input_size[1]}` : '';
  return m.track ? `${m.track}${size} — ${m.file}` : m.file;
}

async function openSelected() {
  const m = page.models[ui.model.selectedIndex];
  if (!m) return;
  if (page.pipeline) page.pipeline.close();
  page.pipeline = null;
  page.result = null;
  clearError();
  setState('loading');
  ui.acceleratorLine.textContent = `Opening ${m.file}…`;
  ui.timingLine.textContent = '';
  ui.save.disabled = true;
  const options = {accelerator: ui.accelerator.value};
  if (params.get('threads')) options.threads = Number(params.get('threads'));
  if (params.get('limits')) options.limits = params.get('limits');
  if (params.get('wasm-threads') === '0') options.threads = false;
  page.openError = null;
  try {
    page.pipeline = await openPipeline(m.url, options);
  } catch (e) {
    ui.acceleratorLine.textContent = '';
    page.openError = e.message;
    showError(e.message);
    return;
  }
  const p = page.pipeline;
  describeAccelerator();
  ui.depthField.hidden = !p.needsDepth;
  const hasAperture = p.needsDepth || p.info.track === 'portrait';
  ui.apertureField.hidden = !hasAperture;
  if (hasAperture) {
    ui.aperture.max = String(p.contract.host.maxAperture);
    if (page.aperture === null) page.aperture = p.contract.host.defaultAperture;
    ui.aperture.value = String(page.aperture);
    ui.apertureValue.textContent = `${page.aperture} px`;
  }
  ui.frame.classList.toggle('tappable', p.needsDepth);
  ui.hint.textContent = p.needsDepth ? 'Render track: choose the photo\'s depth map; tap the photo to focus there.'
    : p.info.track === 'portrait' ? 'Portrait: the person stays sharp; drag the aperture.' : '';
  const notes = [...p.info.notes];
  if (page.photo && p.needsDepth && page.depthFile) await loadDepth(page.depthFile);
  showWarning(notes);
  setState('ready');
  if (page.photo) requestRender();
}

// ---- photo, depth, render ---------------------------------------------------------------------

async function loadPhoto(file) {
  clearError();
  let image;
  try {
    image = await decodePhoto(file, file.name);
  } catch (e) {
    showError(e.message);
    return;
  }
  page.photo = image;
  page.photoName = file.name || 'photo.png';
  page.result = null;
  page.focus = null;
  page.disparity = null;
  ui.marker.hidden = true;
  for (const c of [ui.before, ui.after]) {
    c.width = image.width;
    c.height = image.height;
  }
  ui.before.getContext('2d').putImageData(image, 0, 0);
  ui.after.getContext('2d').clearRect(0, 0, image.width, image.height);
  ui.stage.classList.remove('empty');
  ui.frame.hidden = false;
  ui.save.disabled = true;
  if (page.pipeline?.needsDepth && page.depthFile) {
    if (!(await loadDepth(page.depthFile))) return;
  }
  requestRender();
}

async function loadDepth(file) {
  page.depthFile = file;
  if (!page.pipeline || !page.photo) return true;
  try {
    const {disparity, warnings} = await page.pipeline.disparityFromFile(file, page.photo.width, page.photo.height);
    page.disparity = disparity;
    page.depthWarnings = warnings;
    page.focus = null;
    ui.marker.hidden = true;
    return true;
  } catch (e) {
    page.disparity = null;
    showError(e.message);
    return false;
  }
}

let running = false, pending = false;

function requestRender() {
  if (running) {
    pending = true;
    return;
  }
  running = true;
  (async () => {
    do {
      pending = false;
      await renderOnce();
    } while (pending && !page.error);
    running = false;
  })();
}

async function renderOnce() {
  const p = page.pipeline;
  if (!page.photo) return;
  if (!p) {
    // The model did not open (its message stays), or is still opening (it renders when open).
    if (page.openError) showError(page.openError);
    return;
  }
  if (p.needsDepth && !page.disparity) {
    setState('ready');
    ui.hint.textContent = 'Render track: choose the photo\'s depth map to render (a grey 8- or 16-bit PNG).';
    return;
  }
  clearError();
  setState('busy');
  const options = {};
  if (p.needsDepth) {
    options.disparity = page.disparity;
    if (page.focus !== null) options.focus = page.focus;
  }
  if (p.needsDepth || p.info.track === 'portrait') options.aperture = page.aperture;
  let result;
  try {
    result = await p.render(page.photo, options);
  } catch (e) {
    if (page.pipeline === p) showError(e.message);    // else another model was chosen meanwhile
    return;
  }
  if (page.pipeline !== p) return;       // another model was chosen meanwhile
  page.result = result;
  page.renders++;
  ui.after.getContext('2d').putImageData(result.imageData, 0, 0);
  ui.save.disabled = false;
  describeAccelerator();
  describeTimings(result);
  showWarning([...p.info.notes, ...page.depthWarnings, result.warning]);
  setState('done');
}

// ---- controls -------------------------------------------------------------------------------

ui.photo.addEventListener('change', () => {
  if (ui.photo.files[0]) loadPhoto(ui.photo.files[0]);
});

ui.depth.addEventListener('change', async () => {
  if (!ui.depth.files[0]) return;
  clearError();
  if (await loadDepth(ui.depth.files[0])) requestRender();
});

ui.model.addEventListener('change', openSelected);
ui.accelerator.addEventListener('change', openSelected);

ui.aperture.addEventListener('input', () => {
  page.aperture = Number(ui.aperture.value);
  ui.apertureValue.textContent = `${page.aperture} px`;
  requestRender();           // live: renders queue up, the latest value wins
});

function setCompare() {
  const v = Number(ui.compare.value);
  ui.after.style.clipPath = `inset(0 0 0 ${v}%)`;
  ui.split.style.left = `${v}%`;
  ui.split.hidden = v === 0 || v === 100;
}
ui.compare.addEventListener('input', setCompare);

// Tap to focus (render track): the photo pixel under the finger.
ui.frame.addEventListener('pointerup', (e) => {
  const p = page.pipeline;
  if (!p?.needsDepth || !page.disparity) return;
  const rect = ui.after.getBoundingClientRect();
  const x = Math.floor(((e.clientX - rect.left) / rect.width) * page.photo.width);
  const y = Math.floor(((e.clientY - rect.top) / rect.height) * page.photo.height);
  try {
    page.focus = p.focusAt(page.disparity, page.photo.width, page.photo.height, x, y);
  } catch (err) {
    showError(err.message);
    return;
  }
  ui.marker.style.left = `${((x + 0.5) / page.photo.width) * 100}%`;
  ui.marker.style.top = `${((y + 0.5) / page.photo.height) * 100}%`;
  ui.marker.hidden = false;
  requestRender();
});

ui.save.addEventListener('click', () => {
  if (!page.result) return;
  const stem = (page.photoName || 'photo').replace(/\.[^.]*$/, '');
  ui.after.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${stem}_bokeh.png`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, 'image/png');
});

// Drag and drop a photo anywhere on the page.
for (const type of ['dragenter', 'dragover']) {
  document.addEventListener(type, (e) => {
    e.preventDefault();
    ui.stage.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop']) document.addEventListener(type, () => ui.stage.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (file) loadPhoto(file);
});

// ---- start ----------------------------------------------------------------------------------

(async () => {
  if (params.get('accelerator')) ui.accelerator.value = params.get('accelerator');
  try {
    page.models = await listModels();
  } catch (e) {
    ui.acceleratorLine.textContent = '';
    showError(e.message);
    return;
  }
  if (!page.models.length) {
    showError('The models folder holds no bokeh model: export one with export-tflite -o DIR.');
    return;
  }
  ui.model.replaceChildren(...page.models.map((m) => new Option(modelLabel(m), m.file)));
  ui.model.disabled = false;
  const wanted = params.get('model');
  const index = wanted ? page.models.findIndex((m) => m.file === wanted)
    : Math.max(0, page.models.findIndex((m) => m.track === 'gpu'));
  if (index < 0) {
    showError(`no model ${wanted} in the models folder`);
    return;
  }
  ui.model.selectedIndex = index;
  setCompare();
  await openSelected();
})();
