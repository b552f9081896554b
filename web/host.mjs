// The contract's host steps in the page: libbokeh's android/native/src/host.c compiled to
// WebAssembly (web/host/build.sh), behind plain JavaScript calls on typed arrays.
//
//     const host = await loadHost();
//     const box = host.letterbox(h0, w0, H, W);          // R1: {top, left, height, width, scale}
//     const x = host.fitPhoto(rgb, 3, h0, w0, H, W);     // R2-R3: Float32Array (1, H, W, 3)
//
// Nothing here computes a rule: each method copies its arguments into the wasm heap, calls
// the C function and copies the result out. The golden vectors hold each method to the
// Python reference (tests/test_web_host.py runs web/test/host_golden.mjs).
import createBokehHost from './host/bokeh_host.mjs';

const F32 = 4;

export async function loadHost(options = {}) {
  // options.wasmBinary: the .wasm's bytes (Node, where the module cannot fetch a file: URL).
  const wasm = await createBokehHost(options.wasmBinary ? {wasmBinary: options.wasmBinary} : {});
  return new Host(wasm);
}

export class Host {
  constructor(wasm) {
    this.wasm = wasm;
  }

  // Run fn(alloc) and free what alloc handed out, whatever happens. alloc(bytes) -> pointer.
  _with(fn) {
    const ptrs = [];
    const alloc = (bytes) => {
      const p = this.wasm._malloc(Math.max(1, bytes));
      if (!p) throw new Error('out of memory in the host steps');
      ptrs.push(p);
      return p;
    };
    try {
      return fn(alloc);
    } finally {
      for (const p of ptrs) this.wasm._free(p);
    }
  }

  // Copy a typed array into the heap; returns its pointer. Views are taken afresh each
  // time: the heap may have grown (and moved) since the last call.
  _put(alloc, array) {
    const p = alloc(array.byteLength);
    new Uint8Array(this.wasm.HEAPU8.buffer, p, array.byteLength)
      .set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    return p;
  }

  _f32(p, n) {
    return new Float32Array(this.wasm.HEAPU8.buffer.slice(p, p + n * F32));
  }

  _u8(p, n) {
    return new Uint8Array(this.wasm.HEAPU8.buffer.slice(p, p + n));
  }

  _check(status, what) {
    if (status !== 0) throw new Error(`${what} failed in the host steps (out of memory?)`);
  }

  /** R1: where a photo of h0 x w0 sits in the model input H x W. */
  letterbox(h0, w0, H, W) {
    return this._with((alloc) => {
      const p = alloc(16);
      const scale = this.wasm._bkw_letterbox(h0, w0, H, W, p);
      const [top, left, height, width] = new Int32Array(this.wasm.HEAPU8.buffer.slice(p, p + 16));
      return {photoH: h0, photoW: w0, modelH: H, modelW: W, top, left, height, width, scale};
    });
  }

  /** R1: an aperture in photo pixels as the model takes it: float32(aperture * scale). */
  modelAperture(h0, w0, H, W, aperture) {
    return this.wasm._bkw_model_aperture(h0, w0, H, W, aperture);
  }

  /** R2 on uint8 samples (cn channels interleaved). */
  resizeU8(src, sh, sw, cn, dh, dw) {
    return this._with((alloc) => {
      const s = this._put(alloc, src), d = alloc(dh * dw * cn);
      this._check(this.wasm._bk_resize_u8(s, sh, sw, sw * cn, cn, d, dh, dw, 1), 'resize');
      return this._u8(d, dh * dw * cn);
    });
  }

  /** R2 on float32 samples. */
  resizeF32(src, sh, sw, cn, dh, dw) {
    return this._with((alloc) => {
      const s = this._put(alloc, src), d = alloc(dh * dw * cn * F32);
      this._check(this.wasm._bk_resize_f32(s, sh, sw, sw * cn, cn, d, dh, dw), 'resize');
      return this._f32(d, dh * dw * cn);
    });
  }

  /** R2-R3: a photo (h0 x w0 x cn uint8, cn 3 or 1) -> the model input (1, H, W, 3). */
  fitPhoto(pixels, cn, h0, w0, H, W) {
    return this._with((alloc) => {
      const s = this._put(alloc, pixels), d = alloc(H * W * 3 * F32);
      this._check(this.wasm._bkw_fit_photo(s, cn, h0, w0, H, W, d), 'fitting the photo');
      return this._f32(d, H * W * 3);
    });
  }

  /** R4: a disparity map at the photo's size -> (1, H, W, 1). */
  fitMap(map, h0, w0, H, W) {
    return this._with((alloc) => {
      const s = this._put(alloc, map), d = alloc(H * W * F32);
      this._check(this.wasm._bkw_fit_map(s, h0, w0, H, W, d), 'fitting the disparity');
      return this._f32(d, H * W);
    });
  }

  /** R3 in float: an h0 x w0 x 3 float32 image in [0, 1] -> (1, H, W, 3). */
  fitImageF32(rgb, h0, w0, H, W) {
    return this._with((alloc) => {
      const s = this._put(alloc, rgb), d = alloc(H * W * 3 * F32);
      this._check(this.wasm._bkw_fit_image_f32(s, h0, w0, H, W, d), 'fitting the image');
      return this._f32(d, H * W * 3);
    });
  }

  /** R5: a model output (th x tw x cn) sampled at every pixel of the h0 x w0 photo. */
  sample(h0, w0, H, W, tensor, th, tw, cn) {
    return this._with((alloc) => {
      const s = this._put(alloc, tensor), d = alloc(h0 * w0 * cn * F32);
      this._check(this.wasm._bkw_sample(h0, w0, H, W, s, th, tw, cn, d), 'sampling');
      return this._f32(d, h0 * w0 * cn);
    });
  }

  /** R6 on one row: `pixels` (width x step bytes, colour at offsets 0, 1, 2, or 0 when grey). */
  blendRow(pixels, step, grey, width, bokeh, defocus, eta, tau) {
    return this._with((alloc) => {
      const p = this._put(alloc, pixels), b = this._put(alloc, bokeh), d = this._put(alloc, defocus);
      this.wasm._bk_blend_row(p, step, 0, grey ? 0 : 1, grey ? 0 : 2, grey ? 1 : 0, width, b, d, eta, tau, p);
      return this._u8(p, pixels.length);
    });
  }

  /** R5 + R6 on a whole RGBA photo (w x h x 4): a new Uint8ClampedArray, alpha copied. */
  blend(rgba, w, h, grey, H, W, bokeh, bh, bw, defocus, dh, dw, eta, tau) {
    return this._with((alloc) => {
      const p = this._put(alloc, rgba), b = this._put(alloc, bokeh), d = this._put(alloc, defocus);
      this._check(this.wasm._bkw_blend(p, w, h, grey ? 1 : 0, H, W, b, bh, bw, d, dh, dw, eta, tau), 'blending');
      return new Uint8ClampedArray(this.wasm.HEAPU8.buffer.slice(p, p + w * h * 4));
    });
  }

  /** R8's median: np.median in float32. */
  median(values) {
    return this._with((alloc) => this.wasm._bk_median_f32(this._put(alloc, Float32Array.from(values)), values.length));
  }

  /** R8: the default focus, the median over the centred box `fraction` of each side. */
  centreFocus(disparity, h, w, fraction) {
    return this._with((alloc) => this.wasm._bk_centre_focus(this._put(alloc, disparity), h, w, fraction));
  }

  /** R9: tap to focus, the median of the window x window pixels around (x, y), cut at the edges. */
  focusAt(disparity, h, w, x, y, window) {
    return this._with((alloc) => this.wasm._bk_focus_at(this._put(alloc, disparity), h, w, x, y, window));
  }

  /** R7: 8- or 16-bit depth samples -> disparity in [0, 1] (nearest 1); constant: 0.5. */
  toDisparityU16(samples) {
    return this._with((alloc) => {
      const s = this._put(alloc, Uint16Array.from(samples)), d = alloc(samples.length * F32);
      const constant = this.wasm._bk_to_disparity_u16(s, samples.length, d) === 1;
      return {disparity: this._f32(d, samples.length), constant};
    });
  }

  /** R10: a disparity map (mh x mw) onto the photo's h x w; says whether it was stretched. */
  fitDisparity(map, mh, mw, h, w, tolerance) {
    return this._with((alloc) => {
      const s = this._put(alloc, map), d = alloc(h * w * F32);
      const r = this.wasm._bk_fit_disparity(s, mh, mw, d, h, w, tolerance);
      this._check(r < 0 ? r : 0, 'fitting the depth map');
      return {disparity: this._f32(d, h * w), stretched: (r & 1) !== 0, rotated: (r & 2) !== 0};
    });
  }
}
