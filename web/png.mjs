// Depth files in the page: their samples as bokeh-render reads them (runtime/depth.py
// read_depth). A browser decodes every image to 8 bits a channel, which would throw away
// a 16-bit depth map's precision, so PNG is decoded here (grey or RGB with equal channels,
// 8 or 16 bits, not interlaced; inflated by the browser's DecompressionStream). Any other
// image the browser decodes is taken at 8 bits, when its R, G and B are equal.
export class DepthFileError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BokehError';
    this.kind = 'depth';
  }
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

async function inflate(parts) {
  const stream = new Blob(parts).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paeth(a, b, c) {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** A PNG's bytes -> {width, height, channels, bits, samples (Uint16Array, interleaved)}, or null
 * when it is interlaced or of a kind this reader leaves to the browser (palette). */
export async function decodePng(bytes, where = 'the depth map') {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8, ihdr = null;
  const idat = [];
  while (pos + 8 <= bytes.length) {
    const length = view.getUint32(pos), type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (data.length !== length) throw new DepthFileError(`${where}: the PNG is cut off`);
    if (type === 'IHDR') {
      ihdr = {width: view.getUint32(pos + 8), height: view.getUint32(pos + 12), bits: data[8], colour: data[9],
        interlace: data[12]};
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    pos += 12 + length;
  }
  if (!ihdr || !idat.length) throw new DepthFileError(`${where}: not a readable PNG (no IHDR or IDAT)`);
  const channels = {0: 1, 2: 3, 4: 2, 6: 4}[ihdr.colour];
  if (!channels || ihdr.interlace || !(ihdr.bits === 8 || ihdr.bits === 16)) return null;
  const {width, height, bits} = ihdr;
  if (width * height > 100e6) throw new DepthFileError(`${where}: ${width}x${height} is over 100 megapixels`);
  let raw;
  try {
    raw = await inflate(idat);
  } catch (e) {
    throw new DepthFileError(`${where}: the PNG's image data is damaged (${e.message})`);
  }
  const bpp = channels * bits / 8, stride = width * bpp;
  if (raw.length < height * (stride + 1)) throw new DepthFileError(`${where}: the PNG's image data is cut off`);
  const samples = new Uint16Array(width * height * channels);
  let prev = new Uint8Array(stride), cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      const x = line[i];
      cur[i] = filter === 0 ? x : filter === 1 ? x + a : filter === 2 ? x + b
        : filter === 3 ? x + ((a + b) >> 1) : filter === 4 ? x + paeth(a, b, c) : -1;
      if (filter > 4) throw new DepthFileError(`${where}: the PNG has an unknown row filter ${filter}`);
    }
    const o = y * width * channels;
    if (bits === 8) {
      for (let i = 0; i < stride; i++) samples[o + i] = cur[i];
    } else {
      for (let i = 0; i < stride / 2; i++) samples[o + i] = (cur[2 * i] << 8) | cur[2 * i + 1];
    }
    [prev, cur] = [cur, prev];
  }
  return {width, height, channels, bits, samples};
}

// Interleaved samples -> one grey plane; a colour image (R, G, B differ) is refused.
function greyPlane(samples, n, channels, where) {
  if (channels === 1) return samples;
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = samples[i * channels];
    if (channels >= 3 && (samples[i * channels + 1] !== r || samples[i * channels + 2] !== r)) {
      throw new DepthFileError(`${where}: is a colour image (its R, G and B differ); expected one channel of depth: ` +
        'a grey 8- or 16-bit image');
    }
    out[i] = r;
  }
  return out;
}

/** A depth file (Blob) -> {width, height, bits, samples (Uint16Array, one grey plane)}. */
export async function decodeDepthSamples(blob, where = `depth map ${blob.name || ''}`.trim()) {
  if (!blob || blob.size === 0) throw new DepthFileError(`${where}: file is empty`);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (PNG_SIGNATURE.every((v, i) => bytes[i] === v)) {
    const png = await decodePng(bytes, where);
    if (png) {
      const n = png.width * png.height;
      return {width: png.width, height: png.height, bits: png.bits, samples: greyPlane(png.samples, n, png.channels, where)};
    }
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  } catch (e) {
    throw new DepthFileError(`${where}: not an image (expected a grey 8- or 16-bit PNG)`);
  }
  const {width, height} = bitmap;
  const canvas = new OffscreenCanvas(width, height), ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  return {width, height, bits: 8, samples: greyPlane(Uint16Array.from(rgba), width * height, 4, where)};
}
