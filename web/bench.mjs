// The page's render time, for bench-runtime --web (benchmarks/web.py drives it as the tests
// drive the page):
//
//     bench.html?model=models/NAME.tflite&accelerator=wasm&threads=2&runs=5
//
// The photo arrives through the file input, as a user gives it. A render-track model gets
// the disparity ramp benchmarks/web.py gives bokeh-render (0 at the left edge, 1 at the right).
// window.bokehBench: {done, error, info (the pipeline's), first (the first render's timings),
// renders (the timings of each later render)}.
import {decodePhoto, openPipeline} from './bokeh.mjs';

const params = new URLSearchParams(location.search);
const state = (s) => {
  document.body.dataset.state = s;
};

/** Disparity x / (width - 1), row after row: benchmarks/web.py's ramp. */
export function ramp(width, height) {
  const d = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) d[y * width + x] = width > 1 ? x / (width - 1) : 0;
  }
  return d;
}

async function bench(file) {
  const image = await decodePhoto(file);
  const threads = params.get('threads') ? Number(params.get('threads')) : undefined;
  const pipeline = await openPipeline(params.get('model'), {accelerator: params.get('accelerator') || 'auto', threads});
  try {
    const options = pipeline.needsDepth ? {disparity: ramp(image.width, image.height)} : {};
    const first = (await pipeline.render(image, options)).timings;
    const renders = [];
    for (let i = 0; i < Number(params.get('runs') || 5); i++) renders.push((await pipeline.render(image, options)).timings);
    return {done: true, error: null, info: pipeline.info, first, renders};
  } finally {
    pipeline.close();
  }
}

window.bokehBench = {done: false};
document.getElementById('photo').addEventListener('change', async (event) => {
  state('running');
  try {
    window.bokehBench = await bench(event.target.files[0]);
    state('done');
  } catch (e) {
    window.bokehBench = {done: true, error: e.message || String(e)};
    state('error');
  }
  document.getElementById('report').textContent = JSON.stringify(window.bokehBench, null, 1);
});
state('ready');
