// Bounded reads of the files a folder names. A folder is data from elsewhere: a path in it may be a FIFO (a
// blocking open waits forever), a device (/dev/zero never ends) or a file far larger than any manifest, so every
// file is opened without blocking, must be a regular file, and is capped in size before a byte of it is read.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

export const MANIFEST_CAP = 64 * 2 ** 20;  // exportkit's own cap on a JSON file (limits.JSON_MAX_BYTES)
export const IMAGE_CAP = 256 * 2 ** 20;    // a photo larger than this is not an input a classifier takes
export const ARRAY_CAP = 2 ** 31;          // golden arrays; also about the largest Buffer Node makes

export function readRegular(file, cap) {
  let fd;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e.code ?? e.message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`${file} is not a regular file`);
    if (stat.size > cap) {
      throw new Error(`${file} is ${stat.size >> 20} MiB, over this program's cap of ${cap / 2 ** 20} MiB for it`);
    }
    const buf = Buffer.alloc(stat.size);
    for (let got = 0; got < buf.length;) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) throw new Error(`${file} changed while it was read`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}
