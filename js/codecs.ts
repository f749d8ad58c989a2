/**
 * The widget's binary traits as typed arrays. Maps arrive as one uint8 buffer: word k's map is bytes
 * [k*h*w, (k+1)*h*w), row-major (h, w), each scaled so that its maximum is 255 (the raw maximum travels
 * separately in `peaks`).
 */

export function bytes(data: DataView | null | undefined): Uint8Array {
  return data ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(0);
}

/** Word k's map as a view into the shared buffer (no copy). */
export function decodeMaps(buffer: DataView | ArrayBuffer | Uint8Array, h: number, w: number): Uint8Array[] {
  const bytes =
    buffer instanceof Uint8Array
      ? buffer
      : buffer instanceof ArrayBuffer
        ? new Uint8Array(buffer)
        : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const size = h * w;
  if (size === 0) return [];
  if (bytes.length % size !== 0) {
    throw new Error(`maps buffer of ${bytes.length} bytes is not a whole number of ${h}x${w} maps`);
  }
  const out: Uint8Array[] = [];
  for (let k = 0; k < bytes.length / size; k++) out.push(bytes.subarray(k * size, (k + 1) * size));
  return out;
}

/** Float32 values from a little-endian binary trait. */
export function decodeFloats(buffer: DataView | null | undefined): Float32Array {
  if (!buffer || buffer.byteLength === 0) return new Float32Array(0);
  const out = new Float32Array(buffer.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buffer.getFloat32(i * 4, true);
  return out;
}
