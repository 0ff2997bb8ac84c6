// classify: run an exportkit TorchScript or AOTInductor artifact from C++ with libtorch.
//
//   classify ARTIFACTS [--artifact NAME] [--top K] [--logits] IMAGE...   print the top-K classes of each image
//                                                                  (binary PPM for RGB models, PGM for grayscale;
//                                                                  JPEG photos of any size where the manifest
//                                                                  resizes in float32; --logits prints them all)
//   classify ARTIFACTS [--artifact NAME] --check                  compare with the golden vectors
//
// Everything comes from ARTIFACTS/manifest.json: which file to load, the input size, the preprocessing
// (input = (pixel * scale - mean) / std per channel, RGB, BGR or L (grayscale), NCHW or NHWC), the class names, and the
// golden vectors with their fp32 tolerance. --check preprocesses the golden pixels here, in C++, so it
// tests this program's preprocessing as well as the artifact; with several outputs, it checks every one. Exit
// codes: 0 ok, 1 check failed, 2 bad command line, 3 bad input.
//
// The default artifact is the TorchScript one; --artifact aoti runs the AOTInductor package (format "aoti": the
// model compiled ahead of time into a shared library) through torch::inductor::AOTIModelPackageLoader, PyTorch's
// successor to TorchScript for C++ apps. Both are fed and checked the same way.

#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <memory>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "json.hpp"
#include "npy.hpp"
#include "photo.hpp"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Model {
  torch::jit::script::Module module;                              // a TorchScript artifact, or
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> aoti;  // an AOTInductor package
  int64_t channels = 3, height = 0, width = 0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean, std;
  std::vector<std::string> classes;
  std::string precision = "fp32";
  size_t classifier = 0;  // which of the module's outputs holds the logits (manifest "outputs")
  bool has_classifier = true;  // false for a model built with --classifier none: every output checked by parity
  bool bgr = false;       // the model takes BGR: an RGB image's channels are reversed (golden pixels already are)
  bool nhwc = false;      // the model's input is channels last (preprocessing "layout": "NHWC")
  // The manifest's resize of photos: none, the float32 one this program reproduces, or PIL's, which it does not.
  std::string resize_library;
  int64_t shorter_side = 0;
  std::string filter;
  bool antialias = true;
};

const char* const kFloatResize = "torch.nn.functional.interpolate (float32)";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Manifest paths are relative and may not climb out of the folder: the manifest is input like any other.
std::string inside(const std::string& folder, const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos)
    throw std::runtime_error("manifest path '" + rel + "' must stay inside the artifacts folder");
  return folder + "/" + rel;
}

const mini_json::Value& pick_artifact(const mini_json::Value& manifest, const std::string& name) {
  for (const auto& a : manifest["artifacts"].array()) {
    if (name.empty() ? a["format"].str() == "torchscript" : a["name"].str() == name) {
      const std::string runtime = a["runtime"].str();
      if (runtime != "torchscript" && runtime != "aoti")
        throw std::runtime_error("artifact '" + a["name"].str() + "' runs on " + runtime +
                                 "; this program runs TorchScript and AOTInductor (aoti) artifacts");
      return a;
    }
  }
  throw std::runtime_error(name.empty() ? "the manifest lists no torchscript artifact; build with --formats torchscript"
                                        : "the manifest lists no artifact named '" + name + "'");
}

// (HWC pixel values: uint8 ones as floats, or a float resize's) -> (float32 CHW input, or HWC for an NHWC
// model), the same float32 operations, in the same order, as the manifest's formula in Python, so the inputs match
// the golden ones bit for bit.
void preprocess(const Model& m, const float* pixels, float* out) {
  const int64_t plane = m.height * m.width;
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < m.channels; ++c) {
      float x = pixels[i * m.channels + c] * m.scale;
      out[m.nhwc ? i * m.channels + c : c * plane + i] = (x - m.mean[c]) / m.std[c];
    }
  }
}

// Every output of the module for `count` images, in the order the manifest's "outputs" lists them.
std::vector<torch::Tensor> run_all(Model& m, const float* pixels, int64_t count) {
  const int64_t sample = m.channels * m.height * m.width;
  torch::Tensor input = m.nhwc ? torch::empty({count, m.height, m.width, m.channels}, torch::kFloat32)
                               : torch::empty({count, m.channels, m.height, m.width}, torch::kFloat32);
  for (int64_t n = 0; n < count; ++n) preprocess(m, pixels + n * sample, input.data_ptr<float>() + n * sample);
  torch::InferenceMode guard;
  if (m.aoti) {
    std::vector<torch::Tensor> all;
    for (const auto& t : m.aoti->run({input})) all.push_back(t.contiguous());
    return all;
  }
  c10::IValue out = m.module.forward({input});
  std::vector<torch::Tensor> all;
  if (out.isTuple())
    for (const auto& v : out.toTupleRef().elements()) all.push_back(v.toTensor().contiguous());
  else if (out.isList())
    for (const auto& v : out.toListRef()) all.push_back(v.toTensor().contiguous());
  else
    all.push_back(out.toTensor().contiguous());
  return all;
}

// The classifier's logits: what ranking an image needs.
torch::Tensor run(Model& m, const float* pixels, int64_t count) { return run_all(m, pixels, count).at(m.classifier); }

// The intra-op thread count `exportkit bench --tune` measured fastest for one image on this kind of CPU, when the
// manifest records one (runtime_settings, artifact, "<runtime>/cpu/batch1"); otherwise libtorch's default.
void apply_runtime_settings(const mini_json::Value& manifest, const mini_json::Value& art) {
  const std::string key = art["runtime"].str() + "/cpu/batch1";
  if (!manifest.has("runtime_settings") || !manifest["runtime_settings"].has(art["name"].str())) return;
  const auto& per_row = manifest["runtime_settings"][art["name"].str()];
  if (!per_row.has(key) || !per_row[key].has("threads")) return;
  const double wanted = per_row[key]["threads"].num();
  if (!(wanted >= 1) || wanted != std::floor(wanted))
    throw std::runtime_error("manifest runtime_settings threads must be a whole number of at least 1");
  // a manifest is data: it never starts more threads than this machine has cores (a tuning run elsewhere may
  // have had more)
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = wanted > cores ? cores : static_cast<int>(wanted);
  at::set_num_threads(threads);
  std::fprintf(stderr, "intra-op threads %d (manifest runtime_settings, %s)\n", threads, key.c_str());
}

Model load_model(const std::string& folder, const std::string& artifact_name) {
  mini_json::Value manifest = mini_json::parse(read_file(folder + "/manifest.json"));
  Model m;
  if (manifest["preprocessing"].kind == mini_json::Value::Kind::Null || !manifest["input"].has("shape") ||
      (manifest.has("inputs") && manifest["inputs"].array().size() != 1))
    throw std::runtime_error("this program feeds one image input through the manifest's preprocessing; this model "
                             "takes other inputs (see the manifest's 'inputs')");
  if (manifest.has("outputs")) {
    const auto& outputs = manifest["outputs"].array();
    m.has_classifier = false;
    for (size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i].has("classifier") && outputs[i]["classifier"].kind == mini_json::Value::Kind::Bool &&
          outputs[i]["classifier"].boolean) {
        m.classifier = i;
        m.has_classifier = true;
      }
  }
  const auto& shape = manifest["input"]["shape"].array();
  const auto& prep = manifest["preprocessing"];
  if (shape.size() != 4) throw std::runtime_error("manifest input shape must be [batch, C, H, W] or [batch, H, W, C]");
  m.nhwc = prep.has("layout") && prep["layout"].str() == "NHWC";
  m.channels = static_cast<int64_t>(shape[m.nhwc ? 3 : 1].num());
  m.height = static_cast<int64_t>(shape[m.nhwc ? 1 : 2].num());
  m.width = static_cast<int64_t>(shape[m.nhwc ? 2 : 3].num());
  const std::string color = prep["color"].str();
  if (!(((color == "RGB" || color == "BGR") && m.channels == 3) || (color == "L" && m.channels == 1)))
    throw std::runtime_error("preprocessing color '" + color + "' with " + std::to_string(m.channels) +
                             " input channels is not supported (RGB or BGR with 3, L with 1)");
  m.bgr = color == "BGR";
  // The decoding contract this program implements (photo.hpp); a later one may accept files it would refuse.
  if (prep.has("decode") && prep["decode"]["version"].num() > 1)
    throw std::runtime_error("the manifest's decoding contract is version " +
                             std::to_string(static_cast<int>(prep["decode"]["version"].num())) +
                             "; this program implements version 1");
  m.scale = static_cast<float>(prep["scale"].num());
  if (prep.has("resize")) {
    m.resize_library = prep["resize"]["library"].str();
    m.shorter_side = static_cast<int64_t>(prep["resize"]["shorter_side"].num());
    m.filter = prep["resize"]["interpolation"].str();
    m.antialias = !prep["resize"].has("antialias") || prep["resize"]["antialias"].boolean;
  }
  for (int64_t c = 0; c < m.channels; ++c) {
    m.mean.push_back(static_cast<float>(prep["mean"].array().at(c).num()));
    m.std.push_back(static_cast<float>(prep["std"].array().at(c).num()));
  }
  for (const auto& name : manifest["classes"].array()) m.classes.push_back(name.str());
  const auto& art = pick_artifact(manifest, artifact_name);
  m.precision = art["precision"].str();
  apply_runtime_settings(manifest, art);
  std::string path = inside(folder, art["path"].str());
  if (art["runtime"].str() == "aoti") {
    m.aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
  } else {
    m.module = torch::jit::load(path);
    m.module.eval();
  }
  return m;
}

// Binary PPM (P6, RGB) or PGM (P5, grayscale), whichever the model's channels need, maxval 255, of exactly the
// model's input size; comments after '#' are allowed in the header.
std::vector<float> read_netpbm(const std::string& path, const std::string& bytes, const Model& m) {
  const int64_t channels = m.channels, height = m.height, width = m.width;
  std::istringstream in(bytes);
  auto token = [&in]() {
    std::string t;
    while (in >> t && t[0] == '#') std::getline(in, t);
    return t;
  };
  std::string magic = token();
  const std::string want = channels == 3 ? "P6" : "P5";
  if (magic != want)
    throw std::runtime_error(path + " is not a binary " + (channels == 3 ? "PPM (P6)" : "PGM (P5)") +
                             " image, which this " + (channels == 3 ? "RGB" : "grayscale") + " model takes" +
                             (channels == 3 ? " (or a JPEG)" : ""));
  int64_t w = std::stoll(token()), h = std::stoll(token()), maxval = std::stoll(token());
  in.get();
  if (w != width || h != height || maxval != 255)
    throw std::runtime_error(path + " is " + std::to_string(w) + "x" + std::to_string(h) + " (max " +
                             std::to_string(maxval) + "); the model takes " + std::to_string(width) + "x" +
                             std::to_string(height) + " with max 255" +
                             (m.resize_library.empty() ? "" : " (photos of other sizes: give them as JPEG)"));
  std::vector<uint8_t> pixels(static_cast<size_t>(h * w * channels));
  in.read(reinterpret_cast<char*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
  if (!in) throw std::runtime_error(path + " is truncated");
  return std::vector<float>(pixels.begin(), pixels.end());
}

// A JPEG of any size for a colour model: resized and cropped as the manifest says when it resizes in float32;
// otherwise it must already be the model's size.
std::vector<float> read_jpeg(const std::string& path, const std::string& bytes, const Model& m) {
  if (m.channels != 3) throw std::runtime_error(path + ": this grayscale model takes PGM images");
  photo::Decoded image = photo::decode_jpeg(bytes, path);
  if (m.resize_library == kFloatResize)
    return photo::resize_and_crop(image, m.shorter_side, m.filter, m.antialias, m.height, m.width);
  if (image.height != m.height || image.width != m.width)
    throw std::runtime_error(path + " is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                             "; the model takes " + std::to_string(m.width) + "x" + std::to_string(m.height) +
                             (m.resize_library.empty() ? "" : " (the manifest resizes photos with " +
                                                                  m.resize_library + ", which this program does "
                                                                  "not reproduce: give it images already resized)"));
  return std::vector<float>(image.rgb.begin(), image.rgb.end());
}

// An image file as the model's HWC pixel values, in its channel order.
std::vector<float> read_image(const std::string& path, const Model& m) {
  const std::string bytes = read_file(path);
  std::vector<float> pixels = photo::is_jpeg(bytes) ? read_jpeg(path, bytes, m) : read_netpbm(path, bytes, m);
  if (m.bgr)
    for (size_t i = 0; i < pixels.size(); i += 3) std::swap(pixels[i], pixels[i + 2]);
  return pixels;
}

int classify_images(Model& m, const std::vector<std::string>& images, int top, bool logits) {
  if (!m.has_classifier)
    throw std::runtime_error("this model has no classifier output (built with --classifier none): there are no "
                             "classes to rank; --check verifies every output");
  for (const auto& path : images) {
    std::vector<float> pixels = read_image(path, m);
    torch::Tensor scores = run(m, pixels.data(), 1)[0];
    torch::Tensor probs = torch::softmax(scores, 0);
    auto best = probs.topk(std::min<int64_t>(top, probs.size(0)));
    std::cout << path << "\n";
    for (int64_t k = 0; k < std::get<0>(best).size(0); ++k) {
      int64_t idx = std::get<1>(best)[k].item<int64_t>();
      std::printf("  %-12s %.4f\n", m.classes.at(idx).c_str(), std::get<0>(best)[k].item<float>());
    }
    if (logits) {
      std::printf("  logits");
      for (int64_t k = 0; k < scores.size(0); ++k) std::printf(" %.9g", scores[k].item<float>());
      std::printf("\n");
    }
  }
  return 0;
}

// How far an output is from its golden values: worst absolute error, worst per-sample cosine, non-finite values,
// and (for the classifier) how many samples keep their top-1 class.
struct Gap {
  double max_abs = 0.0, worst_cos = 1.0;
  bool finite = true;
  int64_t agree = 0;

  void add(const float* out, const float* ref, int64_t width) {
    double dot = 0, nr = 0, no = 0;
    for (int64_t j = 0; j < width; ++j) {
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(out[j] - ref[j])));
      if (!std::isfinite(out[j])) finite = false;
      dot += static_cast<double>(out[j]) * ref[j];
      nr += static_cast<double>(ref[j]) * ref[j];
      no += static_cast<double>(out[j]) * out[j];
    }
    worst_cos = std::min(worst_cos, dot / std::sqrt(std::max(nr * no, 1e-300)));
    agree += std::max_element(out, out + width) - out == std::max_element(ref, ref + width) - ref;
  }
};

// The golden values of every output: the classifier's are golden.plain.logits; a model with several outputs also
// lists one file per output in golden.plain.outputs (folders built before that field have the classifier's only).
std::vector<npy::Array> golden_outputs(const mini_json::Value& plain, const std::string& folder, const Model& m) {
  std::vector<npy::Array> found;
  if (plain.has("outputs"))
    for (const auto& rel : plain["outputs"].array()) found.push_back(npy::load(inside(folder, rel.str()), 4));
  else
    found.push_back(npy::load(inside(folder, plain["logits"].str()), 4));
  for (const auto& a : found)
    if (a.descr != "<f4" || a.shape.empty()) throw std::runtime_error("golden outputs must be float32 arrays");
  if (!plain.has("outputs") && m.classifier != 0)
    throw std::runtime_error("the manifest lists several outputs but no golden file for each; rebuild the folder");
  return found;
}

int check_golden(Model& m, const std::string& folder) {
  mini_json::Value manifest = mini_json::parse(read_file(folder + "/manifest.json"));
  const auto& golden = manifest["golden"];
  if (!golden.has("plain")) throw std::runtime_error("this folder has no plain golden vectors; rebuild it");
  npy::Array pixels = npy::load(inside(folder, golden["plain"]["pixels"].str()), 0);
  std::vector<npy::Array> wants = golden_outputs(golden["plain"], folder, m);
  const size_t head = wants.size() == 1 ? 0 : m.classifier;  // the output the first line reports
  if (wants[head].shape.empty() || wants[head].shape[0] == 0)
    throw std::runtime_error("the folder has no golden images: there is nothing to check; rebuild it");
  for (const auto& w : wants)  // every output's rows are the images': a short file would be read past its end
    if (w.shape.empty() || w.shape[0] != wants[head].shape[0])
      throw std::runtime_error("golden output files disagree with the golden images in their number of rows");
  const bool ranked = m.has_classifier;  // top-1 agreement means something for class logits only
  if (pixels.shape.size() != 4 || pixels.shape[0] != wants[head].shape[0] ||
      pixels.shape[1] != m.height || pixels.shape[2] != m.width || pixels.shape[3] != m.channels)
    throw std::runtime_error("golden vectors do not match the manifest's input and output");
  // The artifact's own precision class (golden.tolerances); folders built before it carry fp32_tolerance only.
  const bool own = golden.has("tolerances") && golden["tolerances"].has(m.precision);
  const auto& tol = own ? golden["tolerances"][m.precision] : golden["fp32_tolerance"];
  const bool abs_checked = tol.has("max_abs") && tol["max_abs"].kind != mini_json::Value::Kind::Null;
  const double max_abs_limit = abs_checked ? tol["max_abs"].num() : INFINITY;
  const double min_cosine = tol["min_cosine"].num();
  const double min_agreement = tol.has("min_top1_agreement") ? tol["min_top1_agreement"].num() : 1.0;
  // uint8 pixels as decoded, or float32 ones a float resize made: both become float values here, exactly
  std::vector<float> values(static_cast<size_t>(pixels.count()));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = pixels.descr == "<f4" ? reinterpret_cast<const float*>(pixels.bytes.data())[i]
                                      : static_cast<float>(static_cast<uint8_t>(pixels.bytes[i]));
  const int64_t n = pixels.shape[0], batch = 32;
  std::vector<Gap> gaps(wants.size());
  for (int64_t start = 0; start < n; start += batch) {
    int64_t count = std::min(batch, n - start);
    std::vector<torch::Tensor> got = run_all(m, values.data() + start * m.channels * m.height * m.width, count);
    if (wants.size() == 1) got = {got.at(m.classifier)};
    if (got.size() != wants.size())
      throw std::runtime_error("the artifact gives " + std::to_string(got.size()) + " outputs, the golden files " +
                               std::to_string(wants.size()));
    for (size_t k = 0; k < wants.size(); ++k) {
      const int64_t width = got[k].numel() / count;
      if (width * wants[k].shape[0] != static_cast<int64_t>(wants[k].bytes.size() / 4))
        throw std::runtime_error("output " + std::to_string(k) + " of the artifact has " + std::to_string(width) +
                                 " values per image; its golden file another count");
      const float* want = reinterpret_cast<const float*>(wants[k].bytes.data());
      for (int64_t i = 0; i < count; ++i) gaps[k].add(got[k].data_ptr<float>() + i * width, want + (start + i) * width,
                                                      width);
    }
  }
  auto good = [&](size_t k) {
    const Gap& g = gaps[k];
    return g.finite && g.max_abs <= max_abs_limit && g.worst_cos >= min_cosine &&
           (k != head || !ranked || static_cast<double>(g.agree) >= min_agreement * static_cast<double>(n) - 1e-9);
  };
  bool ok = true;
  for (size_t k = 0; k < gaps.size(); ++k) ok = ok && good(k);
  const Gap& g = gaps[head];
  const std::string agreement =
      ranked ? "top-1 agreement " + std::to_string(g.agree) + "/" + std::to_string(n) + " (limit " +
                   std::to_string(min_agreement).substr(0, 4) + ")"
             : "no classifier: parity alone";
  std::printf("%s: %lld golden images, max abs error %.3g (limit %.3g), worst cosine %.7f (limit %.4f), %s, "
              "%s tolerance%s%s\n", ok ? "PASS" : "FAIL", static_cast<long long>(n), g.max_abs, max_abs_limit,
              g.worst_cos, min_cosine, agreement.c_str(), own ? m.precision.c_str() : "fp32",
              g.finite ? "" : "; non-finite outputs", gaps.size() > 1 ? "; every output checked" : "");
  for (size_t k = 0; k < gaps.size(); ++k)
    if (k != head)
      std::printf("  output %zu: %s, max abs error %.3g, worst cosine %.7f%s\n", k, good(k) ? "ok" : "FAIL",
                  gaps[k].max_abs, gaps[k].worst_cos, gaps[k].finite ? "" : ", non-finite values");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, artifact;
  bool check = false, logits = false;
  int top = 5;
  std::vector<std::string> images;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(a + " needs a value");
        return argv[++i];
      };
      if (a == "--check") check = true;
      else if (a == "--logits") logits = true;
      else if (a == "--artifact") artifact = value();
      else if (a == "--top") top = std::stoi(value());
      else if (a == "-h" || a == "--help") {
        std::cout << "usage: classify ARTIFACTS [--artifact NAME] [--top K] [--logits] (--check | IMAGE...)\n";
        return 0;
      } else if (a.rfind("--", 0) == 0) throw UsageError("unknown option " + a);
      else if (folder.empty()) folder = a;
      else images.push_back(a);
    }
    if (folder.empty() || (!check && images.empty()) || top < 1)
      throw UsageError("usage: classify ARTIFACTS [--artifact NAME] [--top K] [--logits] (--check | IMAGE...)");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  try {
    Model model = load_model(folder, artifact);
    int status = check ? check_golden(model, folder) : 0;
    if (!images.empty()) classify_images(model, images, top, logits);
    return status;
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::cerr << "error: " << what.substr(0, what.find('\n')) << "\n";
    return 3;
  }
}
