#!/usr/bin/env node
// Classify with an exportkit ONNX artifact through onnxruntime-node.
//
//   node classify.mjs ARTIFACTS [--artifact NAME] [--top K] [--logits] IMAGE...   top-K classes of each image
//        (binary PPM for RGB, PGM for grayscale; JPEG, PNG or WebP photos of any size where the manifest resizes
//        in float32; --logits prints them all)
//   node classify.mjs ARTIFACTS [--artifact NAME] --check                  compare with the golden vectors
//
// Preprocessing (per channel, RGB, BGR or L), input size, class names, golden vectors and the fp32 tolerance all
// come from manifest.json; --check preprocesses the golden pixels here, in JavaScript, with Math.fround so each
// step rounds to float32 exactly as the Python side does. Photos are decoded by sharp (libjpeg-turbo, as Pillow:
// the same pixels) and resized by onnxruntime's Resize operator (resize/*.onnx, see make_resize_graphs.py), which
// computes the manifest's torch.nn.functional.interpolate filter to within 1e-3 of a pixel level. Exit codes:
// 0 ok, 1 check failed, 2 bad command line, 3 bad input.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { IMAGE_CAP, MANIFEST_CAP, readRegular } from "./files.mjs";
import { loadNpy } from "./npy.mjs";

const FLOAT_RESIZE = "torch.nn.functional.interpolate (float32)";
const MAX_DIM = 2 ** 16;            // exportkit's limits.MAX_DIM
const MAX_SAMPLE_VALUES = 2 ** 26;  // exportkit's limits.MAX_SAMPLE_ELEMENTS
const MAX_PIXELS = 150_000_000;     // the decoding contract's limit (exportkit.datasets.decode.MAX_PIXELS)
const HERE = path.dirname(fileURLToPath(import.meta.url));

class UsageError extends Error {}
const USAGE = "usage: node classify.mjs ARTIFACTS [--artifact NAME] [--top K] [--logits] (--check | IMAGE...)";

function parseArgs(argv) {
  const opts = { folder: null, artifact: null, top: 5, check: false, logits: false, images: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--check") opts.check = true;
    else if (a === "--logits") opts.logits = true;
    else if (a === "--artifact") opts.artifact = value();
    else if (a === "--top") opts.top = Number.parseInt(value(), 10);
    else if (a === "-h" || a === "--help") return { help: true };
    else if (a.startsWith("--")) throw new UsageError(`unknown option ${a}`);
    else if (opts.folder === null) opts.folder = a;
    else opts.images.push(a);
  }
  if (opts.folder === null || (!opts.check && opts.images.length === 0) || !(opts.top >= 1)) {
    throw new UsageError(USAGE);
  }
  return opts;
}

// Manifest paths are relative and must stay inside the folder: the manifest is input like any other.
function inside(folder, rel) {
  if (typeof rel !== "string" || !rel || path.isAbsolute(rel) || rel.split(/[\\/]/).includes("..")) {
    throw new Error(`manifest path '${rel}' must stay inside the artifacts folder`);
  }
  return path.join(folder, rel);
}

// A manifest number that sizes something: a whole number in [lo, hi], checked before it is used.
function whole(value, what, lo, hi) {
  if (!(Number.isInteger(value) && value >= lo && value <= hi)) {
    throw new Error(`manifest: ${what} must be a whole number from ${lo} to ${hi}`);
  }
  return value;
}

// The input's channels, height and width; the colour mode must be one this program can feed.
function geometry(manifest) {
  if (manifest.preprocessing === null || (manifest.inputs && manifest.inputs.length !== 1)) {
    throw new Error("this program feeds one image input through the manifest's preprocessing; this model takes " +
                    "other inputs (see the manifest's 'inputs')");
  }
  const nhwc = manifest.preprocessing.layout === "NHWC";  // channels last: [batch, H, W, C]
  const [, d1, d2, d3] = manifest.input.shape;
  const [channels, height, width] = nhwc ? [d3, d1, d2] : [d1, d2, d3];
  whole(channels, "the input's channels", 1, 3);
  whole(height, "the input's height", 1, MAX_DIM);
  whole(width, "the input's width", 1, MAX_DIM);
  if (channels * height * width > MAX_SAMPLE_VALUES) {
    throw new Error(`manifest input shape holds more than ${MAX_SAMPLE_VALUES} values`);
  }
  const { mean, std, scale } = manifest.preprocessing;
  if (!(Array.isArray(mean) && Array.isArray(std) && mean.length === channels && std.length === channels &&
        mean.every(Number.isFinite) && std.every((v) => Number.isFinite(v) && v !== 0) && Number.isFinite(scale))) {
    throw new Error("manifest: preprocessing scale and mean must be finite numbers and std finite and non-zero, " +
                    "one per input channel");
  }
  if (!(Array.isArray(manifest.classes) && manifest.classes.every((c) => typeof c === "string"))) {
    throw new Error("manifest: classes must be strings");
  }
  if (manifest.preprocessing.resize) whole(manifest.preprocessing.resize.shorter_side, "resize shorter_side", 1, MAX_DIM);
  const contract = manifest.preprocessing.decode?.version ?? 1;  // the decoding contract readPhoto implements
  if (contract > 1) throw new Error(`the manifest's decoding contract is version ${contract}; this program implements version 1`);
  const color = manifest.preprocessing.color;
  if (!(((color === "RGB" || color === "BGR") && channels === 3) || (color === "L" && channels === 1))) {
    throw new Error(`preprocessing color '${color}' with ${channels} input channels is not supported ` +
                    "(RGB or BGR with 3, L with 1)");
  }
  return { channels, height, width, nhwc, resize: manifest.preprocessing.resize ?? null, bgr: color === "BGR" };
}

function preprocess(manifest, pixels, count, { channels, height, width, nhwc }) {
  const { scale, mean, std } = manifest.preprocessing;
  const f = Math.fround;
  const plane = height * width;
  const out = new Float32Array(count * channels * plane);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < channels; c++) {
        const x = f(pixels[(n * plane + i) * channels + c] * f(scale));
        const at = nhwc ? (n * plane + i) * channels + c : (n * channels + c) * plane + i;
        out[at] = f(f(x - f(mean[c])) / f(std[c]));
      }
    }
  }
  return out;
}

// Binary PPM (P6) for an RGB or BGR model, PGM (P5) for a grayscale one, of exactly the model's input size.
function readNetpbm(file, buf, { channels, height, width, resize }) {
  const text = buf.toString("latin1");
  const tokens = [];
  let pos = 0;
  while (tokens.length < 4) {
    const m = /^(\s+|#[^\n]*\n)*(\S+)/.exec(text.slice(pos));
    if (!m) throw new Error(`${file} is not a PPM/PGM image`);
    tokens.push(m[2]);
    pos += m[0].length;
  }
  const [magic, w, h, maxval] = tokens;
  const want = channels === 3 ? "P6" : "P5";
  if (magic !== want) {
    throw new Error(`${file} is not a binary ${channels === 3 ? "PPM (P6)" : "PGM (P5)"} image, which this ` +
                    `${channels === 3 ? "RGB" : "grayscale"} model takes`);
  }
  if (Number(w) !== width || Number(h) !== height || Number(maxval) !== 255) {
    const hint = resize ? " (photos of other sizes: give them as JPEG, PNG or WebP)" : "";
    throw new Error(`${file} is ${w}x${h} (max ${maxval}); the model takes ${width}x${height} with max 255${hint}`);
  }
  const pixels = buf.subarray(pos + 1, pos + 1 + height * width * channels);
  if (pixels.length !== height * width * channels) throw new Error(`${file} is truncated`);
  return Float32Array.from(pixels);
}

// Python's round() of a non-negative half-integer or integer: halves go to the even neighbour.
const roundHalfEven = (x) => {
  const r = Math.round(x);
  return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

const resizeSessions = {};

// The manifest's float32 resize of an RGB photo: shorter side to N (the long side scaled and truncated), Resize in
// onnxruntime, then a centre crop; HWC float32 out, never rounded.
async function resizePhoto(rgb, h, w, { height, width, resize }) {
  const n = resize.shorter_side;
  const [oh, ow] = h <= w ? [n, Math.trunc((n * w) / h)] : [Math.trunc((n * h) / w), n];
  if (oh < height || ow < width || oh * ow > MAX_PIXELS) {
    throw new Error(`the manifest's resize to a shorter side of ${n} makes ${ow}x${oh} of this image, which cannot ` +
                    `be cropped to the model's ${width}x${height}`);
  }
  const filter = resize.interpolation;
  if (!["bilinear", "bicubic"].includes(filter)) throw new Error(`resize filter '${filter}' is not reproduced here`);
  const graph = `${filter}${resize.antialias === false ? "-no-antialias" : ""}`;
  resizeSessions[graph] ??= await ort.InferenceSession.create(path.join(HERE, "resize", `${graph}.onnx`));
  const planes = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) planes[c * h * w + i] = rgb[i * 3 + c];
  const { y } = await resizeSessions[graph].run({
    x: new ort.Tensor("float32", planes, [1, 3, h, w]),
    sizes: new ort.Tensor("int64", BigInt64Array.from([1n, 3n, BigInt(oh), BigInt(ow)]), [4]),
  });
  const top = roundHalfEven((oh - height) / 2), left = roundHalfEven((ow - width) / 2);
  const out = new Float32Array(height * width * 3);
  for (let r = 0; r < height; r++) {
    for (let col = 0; col < width; col++) {
      for (let c = 0; c < 3; c++) out[(r * width + col) * 3 + c] = y.data[(c * oh + r + top) * ow + col + left];
    }
  }
  return out;
}

// A JPEG, PNG or WebP for a colour model: decoded to RGB by sharp under the manifest's decoding contract (8-bit
// only, alpha dropped, CMYK refused, a truncated or corrupt file refused, EXIF orientation ignored: sharp rotates
// only when asked), resized as the manifest says when it resizes in float32; otherwise it must already be the
// model's size.
async function readPhoto(file, buf, geom) {
  if (geom.channels !== 3) throw new Error(`${file}: this grayscale model takes PGM images`);
  const { default: sharp } = await import("sharp");
  let decoded, meta;
  try {
    const image = sharp(buf, { failOn: "error", limitInputPixels: MAX_PIXELS });
    meta = await image.metadata();
    if (meta.space !== "cmyk" && ["uchar", "char"].includes(meta.depth)) {
      decoded = await image.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
    }
  } catch (e) {
    throw new Error(`${file} is not a PPM, JPEG, PNG or WebP image sharp can read whole: ${e.message}`);
  }
  if (meta.space === "cmyk") throw new Error(`${file} is a CMYK image, which the decoding contract refuses`);
  if (!decoded) throw new Error(`${file} has ${meta.depth} samples: the decoding contract decodes 8-bit images only`);
  const { data, info } = decoded;
  if (geom.resize?.library === FLOAT_RESIZE) return resizePhoto(data, info.height, info.width, geom);
  if (info.height !== geom.height || info.width !== geom.width) {
    const hint = geom.resize ? ` (the manifest resizes photos with ${geom.resize.library}, which this program ` +
                               "does not reproduce: give it images already resized)" : "";
    throw new Error(`${file} is ${info.width}x${info.height}; the model takes ${geom.width}x${geom.height}${hint}`);
  }
  return Float32Array.from(data);
}

// An image file as the model's HWC pixel values, in its channel order.
async function readImage(file, geom) {
  const buf = readRegular(file, IMAGE_CAP);
  const magic = buf.subarray(0, 2).toString("latin1");
  const pixels = magic === "P5" || magic === "P6" ? readNetpbm(file, buf, geom) : await readPhoto(file, buf, geom);
  if (geom.bgr) for (let i = 0; i < pixels.length; i += 3) [pixels[i], pixels[i + 2]] = [pixels[i + 2], pixels[i]];
  return pixels;
}

// Every output the session gives, by name.
async function runAll(session, manifest, pixels, count, geom) {
  const input = new ort.Tensor("float32", preprocess(manifest, pixels, count, geom),
                               geom.nhwc ? [count, geom.height, geom.width, geom.channels]
                                         : [count, geom.channels, geom.height, geom.width]);
  return session.run({ [session.inputNames[0]]: input });
}

// The classifier's logits, among every output: what ranking an image needs.
async function run(session, manifest, pixels, count, geom) {
  const out = await runAll(session, manifest, pixels, count, geom);
  return out[manifest.output.name ?? session.outputNames[0]];
}

const argmax = (a) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);

// How far one output is from its golden values: worst absolute error, worst per-sample cosine, non-finite values,
// and how many samples keep their top-1 class (meaningful for the classifier).
class Gap {
  constructor() { Object.assign(this, { maxAbs: 0, worstCos: 1, agree: 0, finite: true }); }

  add(out, ref) {
    let dot = 0, nr = 0, no = 0;
    for (let j = 0; j < out.length; j++) {
      if (!Number.isFinite(out[j])) this.finite = false;
      this.maxAbs = Math.max(this.maxAbs, Math.abs(out[j] - ref[j]));
      dot += out[j] * ref[j]; nr += ref[j] * ref[j]; no += out[j] * out[j];
    }
    this.worstCos = Math.min(this.worstCos, dot / Math.sqrt(Math.max(nr * no, 1e-300)));
    this.agree += argmax(out) === argmax(ref) ? 1 : 0;
  }
}

// Golden values per output name: the classifier's (golden.plain.logits), and with several outputs each one's own
// file (golden.plain.outputs, in the manifest's output order).
function goldenOutputs(manifest, folder) {
  const plain = manifest.golden.plain;
  if (!plain.outputs) return { [manifest.output.name]: loadNpy(inside(folder, plain.logits)) };
  return Object.fromEntries(manifest.outputs.map((o, k) => [o.name, loadNpy(inside(folder, plain.outputs[k]))]));
}

async function check(session, manifest, art, folder, geom) {
  const { channels, height, width } = geom;
  const golden = manifest.golden;
  if (!golden.plain) throw new Error("this folder has no plain golden vectors; rebuild it");
  const pixels = loadNpy(inside(folder, golden.plain.pixels));
  const wants = goldenOutputs(manifest, folder);
  const head = manifest.output.name;
  // a model built with --classifier none marks no output: top-1 agreement then means nothing anywhere
  const ranked = !manifest.outputs || manifest.outputs.some((o) => o.classifier);
  const n = wants[head].shape[0];
  if (!n) throw new Error("the folder has no golden images: there is nothing to check; rebuild it");
  if (Object.values(wants).some((w) => w.shape[0] !== n)) {
    throw new Error("golden output files disagree with the golden images in their number of rows");
  }
  if (pixels.shape[0] !== n || pixels.shape[1] !== height || pixels.shape[2] !== width || pixels.shape[3] !== channels) {
    throw new Error("golden vectors do not match the manifest's input");
  }
  const gaps = Object.fromEntries(Object.keys(wants).map((name) => [name, new Gap()]));
  for (let start = 0; start < n; start += 32) {
    const count = Math.min(32, n - start);
    const got = await runAll(session, manifest, pixels.data.subarray(start * height * width * channels), count, geom);
    for (const [name, want] of Object.entries(wants)) {
      const width = want.data.length / n;
      if (!got[name] || got[name].data.length !== width * count) {
        throw new Error(`the artifact's output ${name} does not match its golden values (${width} per image)`);
      }
      for (let i = 0; i < count; i++) {
        gaps[name].add(got[name].data.subarray(i * width, (i + 1) * width),
                       want.data.subarray((start + i) * width, (start + i + 1) * width));
      }
    }
  }
  // The artifact's own precision class (golden.tolerances); folders built before it carry fp32_tolerance only.
  const own = golden.tolerances?.[art.precision];
  const tol = own ?? golden.fp32_tolerance;
  const maxAbsLimit = tol.max_abs ?? Infinity;
  const minAgreement = tol.min_top1_agreement ?? 1;
  const good = (name) => gaps[name].finite && gaps[name].maxAbs <= maxAbsLimit && gaps[name].worstCos >= tol.min_cosine &&
                         (name !== head || !ranked || gaps[name].agree >= minAgreement * n - 1e-9);
  const ok = Object.keys(gaps).every(good);
  const g = gaps[head];
  console.log(`${ok ? "PASS" : "FAIL"}: ${n} golden images, max abs error ${g.maxAbs.toPrecision(3)} (limit ${maxAbsLimit}), ` +
              `worst cosine ${g.worstCos.toFixed(7)} (limit ${tol.min_cosine}), ` +
              `${ranked ? `top-1 agreement ${g.agree}/${n} (limit ${minAgreement})` : "no classifier: parity alone"}, ` +
              `${own ? art.precision : "fp32"} tolerance${g.finite ? "" : "; non-finite outputs"}` +
              `${Object.keys(gaps).length > 1 ? "; every output checked" : ""}`);
  for (const name of Object.keys(gaps).filter((x) => x !== head)) {
    console.log(`  output ${name}: ${good(name) ? "ok" : "FAIL"}, max abs error ${gaps[name].maxAbs.toPrecision(3)}, ` +
                `worst cosine ${gaps[name].worstCos.toFixed(7)}${gaps[name].finite ? "" : ", non-finite values"}`);
  }
  return ok ? 0 : 1;
}

// The settings `exportkit bench --tune` measured fastest for one image on this kind of CPU, when the manifest
// records them (runtime_settings, artifact, "<runtime>/cpu/batch1"); otherwise onnxruntime's defaults.
function sessionOptions(manifest, art) {
  const key = `${art.runtime}/cpu/batch1`;
  const tuned = manifest.runtime_settings?.[art.name]?.[key] ?? {};
  const options = { executionProviders: ["cpu"] };
  if (tuned.threads !== undefined) {
    whole(tuned.threads, "runtime_settings threads", 1, 2 ** 20);
    // a manifest is data: never more threads than this machine has cores (a tuning run elsewhere may have had more)
    options.intraOpNumThreads = Math.min(tuned.threads, os.availableParallelism());
  }
  if (tuned.spinning === false) options.extra = { session: { intra_op: { allow_spinning: "0" } } };
  if (tuned.threads || tuned.spinning === false) {
    console.error(`intra-op threads ${options.intraOpNumThreads ?? "default"}, spinning ${tuned.spinning !== false} ` +
                  `(manifest runtime_settings, ${key})`);
  }
  return options;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  try {
    const manifest = JSON.parse(readRegular(path.join(opts.folder, "manifest.json"), MANIFEST_CAP).toString("utf8"));
    const art = manifest.artifacts.find((a) => (opts.artifact ? a.name === opts.artifact : a.format === "onnx"));
    if (!art) throw new Error(opts.artifact ? `the manifest lists no artifact named '${opts.artifact}'`
                                            : "the manifest lists no onnx artifact; build with --formats onnx");
    const geom = geometry(manifest);
    const session = await ort.InferenceSession.create(inside(opts.folder, art.path), sessionOptions(manifest, art));
    const status = opts.check ? await check(session, manifest, art, opts.folder, geom) : 0;
    if (opts.images.length && manifest.outputs && !manifest.outputs.some((o) => o.classifier)) {
      throw new Error("this model has no classifier output (built with --classifier none): there are no classes to " +
                      "rank; --check verifies every output");
    }
    for (const file of opts.images) {
      const logits = (await run(session, manifest, await readImage(file, geom), 1, geom)).data;
      const peak = Math.max(...logits);
      const exp = Array.from(logits, (v) => Math.exp(v - peak));
      const total = exp.reduce((a, b) => a + b, 0);
      const ranked = exp.map((v, i) => [v / total, i]).sort((a, b) => b[0] - a[0]).slice(0, opts.top);
      console.log(file);
      for (const [p, i] of ranked) console.log(`  ${manifest.classes[i].padEnd(12)} ${p.toFixed(4)}`);
      if (opts.logits) console.log(`  logits ${Array.from(logits, (v) => v.toPrecision(9)).join(" ")}`);
    }
    return status;
  } catch (e) {
    console.error(`error: ${String(e.message ?? e).split("\n")[0]}`);
    return 3;
  }
}

process.exitCode = await main();
