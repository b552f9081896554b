// The page's host steps (libbokeh's host.c compiled to WebAssembly, through web/host.mjs)
// against the golden vectors the Python reference computed (tests/golden_vectors.py ->
// tests/fixtures/golden/host_steps.json; docs/contract.md). The twin of libbokeh's
// android/native/tests/host_golden.c, case for case, with the tolerances the file states.
//
//     node web/test/host_golden.mjs host_steps.json FUNCTION   # letterbox, resize_u8, ..., fit_disparity
//
// One line per case with its largest difference; exit 1 when a case is off by more than the
// tolerance, 2 on a bad file or function name. tests/test_web_host.py runs it per function.
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {loadHost} from '../host.mjs';

const [file, fn] = process.argv.slice(2);
if (!file || !fn) {
  console.error('usage: node web/test/host_golden.mjs host_steps.json FUNCTION');
  process.exit(2);
}
let doc;
try {
  doc = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`host_golden: ${file}: cannot read it (${e.message})`);
  process.exit(2);
}
const cases = doc.cases?.[fn], tolerance = doc.tolerance?.[fn];
if (!Array.isArray(cases) || typeof tolerance !== 'number') {
  console.error(`host_golden: ${file} has no cases or tolerance for '${fn}'`);
  process.exit(2);
}
const wasmBinary = readFileSync(fileURLToPath(new URL('../host/bokeh_host.wasm', import.meta.url)));
const host = await loadHost({wasmBinary});

let failed = 0, worstAll = 0;
// Compare got (numbers) with expected, each expected value read as float32 as the C test does.
function compare(index, got, expected) {
  let worst = 0;
  let bad = got.length !== expected.length;
  for (let i = 0; i < got.length && !bad; i++) {
    const d = Math.abs(got[i] - Math.fround(expected[i]));
    if (!(d <= worst)) worst = d;            // NaN counts as the worst
  }
  bad = bad || !(worst <= tolerance);
  console.log(`${fn} case ${index}: ${got.length} values, largest difference ${worst}${bad ? '  FAIL' : ''}`);
  failed += bad ? 1 : 0;
  if (worst > worstAll || Number.isNaN(worst)) worstAll = worst;
}

const f32 = (list) => Float32Array.from(list);
const u8 = (list) => Uint8Array.from(list);

cases.forEach((k, index) => {
  switch (fn) {
    case 'letterbox': {                           // R1: the box, and the aperture's scale
      const box = host.letterbox(k.photo[0], k.photo[1], k.model[0], k.model[1]);
      const got = [box.top, box.left, box.height, box.width, Math.fround(box.scale)];
      const want = [k.top, k.left, k.height, k.width, k.scale];
      for (const [a, scaled] of k.aperture) {
        got.push(host.modelAperture(k.photo[0], k.photo[1], k.model[0], k.model[1], a));
        want.push(scaled);
      }
      compare(index, got, want);
      break;
    }
    case 'resize_u8':
    case 'resize_f32': {                          // R2
      const [sh, sw, cn] = k.src, [dh, dw] = k.dst;
      const out = fn === 'resize_u8' ? host.resizeU8(u8(k.input), sh, sw, cn, dh, dw)
        : host.resizeF32(f32(k.input), sh, sw, cn, dh, dw);
      compare(index, Array.from(out), k.output);
      break;
    }
    case 'fit_photo':
    case 'fit_map':
    case 'fit_image_f32': {                       // R3, R4
      const [h0, w0, cn] = k.photo, [H, W] = k.model;
      const out = fn === 'fit_photo' ? host.fitPhoto(u8(k.input), cn, h0, w0, H, W)
        : fn === 'fit_map' ? host.fitMap(f32(k.input), h0, w0, H, W)
          : host.fitImageF32(f32(k.input), h0, w0, H, W);
      compare(index, Array.from(out), k.output);
      break;
    }
    case 'sample': {                              // R5
      const [th, tw, cn] = k.tensor;
      const out = host.sample(k.photo[0], k.photo[1], k.model[0], k.model[1], f32(k.input), th, tw, cn);
      compare(index, Array.from(out), k.output);
      break;
    }
    case 'blend': {                               // R6 on one row; alpha (the fourth byte) untouched
      const out = host.blendRow(u8(k.pixels), k.step, k.grey, k.width, f32(k.bokeh), f32(k.defocus), k.eta, k.tau);
      compare(index, Array.from(out), k.output);
      break;
    }
    case 'median':                                // R8's median
      compare(index, [host.median(k.input)], [k.output]);
      break;
    case 'centre_focus':
    case 'focus_at': {                            // R8, R9
      const map = doc.cases.maps[k.map], [h, w] = map.shape, d = f32(map.values);
      const got = fn === 'centre_focus' ? host.centreFocus(d, h, w, k.fraction)
        : host.focusAt(d, h, w, k.x, k.y, k.window);
      compare(index, [got], [k.output]);
      break;
    }
    case 'to_disparity': {                        // R7, and whether the map was constant
      const {disparity, constant} = host.toDisparityU16(Uint16Array.from(k.input));
      compare(index, [...disparity, constant ? 1 : 0], [...k.output, k.constant ? 1 : 0]);
      break;
    }
    case 'fit_disparity': {                       // R10, and whether it warns of a stretch or a rotation
      const [mh, mw] = k.map, [h, w] = k.photo;
      const r = host.fitDisparity(f32(k.input), mh, mw, h, w, doc.host?.ratio_tolerance ?? 0.01);
      compare(index, [...r.disparity, r.stretched ? 1 : 0, r.rotated ? 1 : 0],
        [...k.output, k.stretched ? 1 : 0, k.rotated ? 1 : 0]);
      break;
    }
    default:
      console.error(`host_golden: no check for '${fn}'`);
      process.exit(2);
  }
});
console.log(`${fn}: ${cases.length} cases, ${failed} failed, largest difference ${worstAll} (tolerance ${tolerance})`);
process.exit(failed ? 1 : 0);
