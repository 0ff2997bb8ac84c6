// Reads a NumPy .npy file (versions 1-3, C order, little-endian) into a typed array plus its shape.
import { readFileSync } from "node:fs";

const TYPES = { "|u1": Uint8Array, "<f4": Float32Array };

export function loadNpy(path) {
  const buf = readFileSync(path);
  if (buf.subarray(0, 6).toString("latin1") !== "\x93NUMPY") throw new Error(`${path} is not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString("latin1");
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "").split(",").filter((s) => s.trim()).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path} is not in C order`);
  const Type = TYPES[descr];
  if (!Type) throw new Error(`${path}: unsupported dtype ${descr}`);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = buf.subarray(start, start + count * Type.BYTES_PER_ELEMENT);
  if (bytes.length !== count * Type.BYTES_PER_ELEMENT) throw new Error(`${path} is shorter than its shape says`);
  const copy = new Uint8Array(bytes); // aligned copy: the header may leave the data at any offset
  return { data: new Type(copy.buffer), shape };
}
