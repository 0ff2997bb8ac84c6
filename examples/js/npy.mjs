// Reads a NumPy .npy file (versions 1-3, C order, little-endian) into a typed array plus its shape.
import { ARRAY_CAP, readRegular } from "./files.mjs";

const TYPES = { "|u1": Uint8Array, "<f4": Float32Array };

export function loadNpy(path) {
  const buf = readRegular(path, ARRAY_CAP);
  if (buf.subarray(0, 6).toString("latin1") !== "\x93NUMPY") throw new Error(`${path} is not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.subarray(major === 1 ? 10 : 12, start).toString("latin1");
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const dims = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "").split(",").filter((s) => s.trim());
  // whole numbers small enough to be exact in a double: a larger one could round to a size that fits the file
  if (!dims.every((d) => /^\s*\d{1,15}\s*$/.test(d))) throw new Error(`${path} declares a shape that is not a tuple of whole numbers`);
  const shape = dims.map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path} is not in C order`);
  const Type = TYPES[descr];
  if (!Type) throw new Error(`${path}: unsupported dtype ${descr}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (start > buf.length) throw new Error(`${path} declares a header longer than it is`);
  const bytes = buf.subarray(start, start + count * Type.BYTES_PER_ELEMENT);
  if (bytes.length !== count * Type.BYTES_PER_ELEMENT) throw new Error(`${path} is shorter than its shape says`);
  const copy = new Uint8Array(bytes); // aligned copy: the header may leave the data at any offset
  return { data: new Type(copy.buffer), shape };
}
