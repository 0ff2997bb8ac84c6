// The artifact a manifest names, loaded with what feeding it needs: input geometry, preprocessing, classes, which
// output holds the logits, and the thread count `exportkit bench --tune` chose. Every value is range-checked
// before it sizes anything: a manifest is data from elsewhere.
#pragma once

#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "manifest.hpp"

namespace model {

using manifest::json;

constexpr int64_t kMaxDim = 1 << 16;             // exportkit's limits.MAX_DIM
constexpr int64_t kMaxSampleValues = 64ll << 20;  // exportkit's limits.MAX_SAMPLE_ELEMENTS
const char* const kFloatResize = "torch.nn.functional.interpolate (float32)";

struct Model {
  torch::jit::script::Module module;                              // a TorchScript artifact, or
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> aoti;  // an AOTInductor package
  int64_t channels = 3, height = 0, width = 0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean, std;
  std::vector<std::string> classes;
  std::string precision = "fp32";
  size_t classifier = 0;       // which of the module's outputs holds the logits (manifest "outputs")
  bool has_classifier = true;  // false for a model built with --classifier none: every output checked by parity
  bool bgr = false;            // the model takes BGR: an RGB image's channels are reversed (golden pixels already are)
  bool nhwc = false;           // the model's input is channels last (preprocessing "layout": "NHWC")
  // The manifest's resize of photos: none, the float32 one this program reproduces, or PIL's, which it does not.
  std::string resize_library;
  int64_t shorter_side = 0;
  std::string filter;
  bool antialias = true;
};

// Manifest paths are relative and may not climb out of the folder: the manifest is input like any other.
inline std::string inside(const std::string& folder, const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos)
    throw std::runtime_error("manifest path '" + rel + "' must stay inside the artifacts folder");
  return folder + "/" + rel;
}

inline const json& pick_artifact(const json& doc, const std::string& name) {
  for (const auto& a : manifest::list(doc, "artifacts")) {
    if (name.empty() ? manifest::text(a, "format") == "torchscript" : manifest::text(a, "name") == name) {
      const std::string runtime = manifest::text(a, "runtime");
      if (runtime != "torchscript" && runtime != "aoti")
        throw std::runtime_error("artifact '" + manifest::text(a, "name") + "' runs on " + runtime +
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
inline void preprocess(const Model& m, const float* pixels, float* out) {
  const int64_t plane = m.height * m.width;
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < m.channels; ++c) {
      float x = pixels[i * m.channels + c] * m.scale;
      out[m.nhwc ? i * m.channels + c : c * plane + i] = (x - m.mean[c]) / m.std[c];
    }
  }
}

// Every output of the module for `count` images, in the order the manifest's "outputs" lists them.
inline std::vector<torch::Tensor> run_all(Model& m, const float* pixels, int64_t count) {
  const int64_t sample = m.channels * m.height * m.width;
  torch::Tensor input = m.nhwc ? torch::empty({count, m.height, m.width, m.channels}, torch::kFloat32)
                               : torch::empty({count, m.channels, m.height, m.width}, torch::kFloat32);
  for (int64_t n = 0; n < count; ++n) preprocess(m, pixels + n * sample, input.data_ptr<float>() + n * sample);
  torch::InferenceMode guard;
  std::vector<torch::Tensor> all;
  if (m.aoti) {
    for (const auto& t : m.aoti->run({input})) all.push_back(t.contiguous());
    return all;
  }
  c10::IValue out = m.module.forward({input});
  if (out.isTuple())
    for (const auto& v : out.toTupleRef().elements()) all.push_back(v.toTensor().contiguous());
  else if (out.isList())
    for (const auto& v : out.toListRef()) all.push_back(v.toTensor().contiguous());
  else
    all.push_back(out.toTensor().contiguous());
  return all;
}

// The intra-op thread count `exportkit bench --tune` measured fastest for one image on this kind of CPU, when the
// manifest records one (runtime_settings, artifact, "<runtime>/cpu/batch1"); otherwise libtorch's default.
inline void apply_runtime_settings(const json& doc, const json& art) {
  const std::string key = manifest::text(art, "runtime") + "/cpu/batch1", name = manifest::text(art, "name");
  if (!manifest::has(doc, "runtime_settings") || !manifest::has(doc["runtime_settings"], name)) return;
  const json& per_row = doc["runtime_settings"][name];
  if (!manifest::has(per_row, key) || !manifest::has(per_row[key], "threads")) return;
  const int64_t wanted = manifest::whole(per_row[key]["threads"], "runtime_settings threads", 1, 1 << 20);
  // a manifest is data: it never starts more threads than this machine has cores (a tuning run elsewhere may
  // have had more)
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = static_cast<int>(std::min(wanted, cores));
  at::set_num_threads(threads);
  std::fprintf(stderr, "intra-op threads %d (manifest runtime_settings, %s)\n", threads, key.c_str());
}

// Which output holds the class logits: the one the manifest's "outputs" marks, none for --classifier none, the
// first for folders built before "outputs" existed.
inline void read_outputs(const json& doc, Model& m) {
  if (!manifest::has(doc, "outputs")) return;
  const json& outputs = manifest::list(doc, "outputs");
  m.has_classifier = false;
  for (size_t i = 0; i < outputs.size(); ++i)
    if (manifest::has(outputs[i], "classifier") && outputs[i]["classifier"].is_boolean() &&
        outputs[i]["classifier"].get<bool>()) {
      m.classifier = i;
      m.has_classifier = true;
    }
}

inline void read_geometry(const json& doc, const json& prep, Model& m) {
  const json& shape = manifest::list(manifest::field(doc, "input"), "shape");
  if (shape.size() != 4) throw std::runtime_error("manifest input shape must be [batch, C, H, W] or [batch, H, W, C]");
  m.nhwc = manifest::has(prep, "layout") && manifest::text(prep, "layout") == "NHWC";
  m.channels = manifest::whole(shape[m.nhwc ? 3 : 1], "the input's channels", 1, 3);
  m.height = manifest::whole(shape[m.nhwc ? 1 : 2], "the input's height", 1, kMaxDim);
  m.width = manifest::whole(shape[m.nhwc ? 2 : 3], "the input's width", 1, kMaxDim);
  if (m.channels * m.height * m.width > kMaxSampleValues)
    throw std::runtime_error("manifest input shape holds more than " + std::to_string(kMaxSampleValues) + " values");
  const std::string color = manifest::text(prep, "color");
  if (!(((color == "RGB" || color == "BGR") && m.channels == 3) || (color == "L" && m.channels == 1)))
    throw std::runtime_error("preprocessing color '" + color + "' with " + std::to_string(m.channels) +
                             " input channels is not supported (RGB or BGR with 3, L with 1)");
  m.bgr = color == "BGR";
}

inline void read_preprocessing(const json& prep, Model& m) {
  // The decoding contract this program implements (photo.hpp); a later one may accept files it would refuse.
  if (manifest::has(prep, "decode") && manifest::number(prep["decode"], "version") > 1)
    throw std::runtime_error("the manifest's decoding contract is a later version than 1, which this program "
                             "implements");
  m.scale = static_cast<float>(manifest::number(prep, "scale"));
  if (manifest::has(prep, "resize")) {
    const json& resize = prep["resize"];
    m.resize_library = manifest::text(resize, "library");
    m.shorter_side = manifest::whole(manifest::field(resize, "shorter_side"), "resize shorter_side", 1, kMaxDim);
    m.filter = manifest::text(resize, "interpolation");
    m.antialias = !manifest::has(resize, "antialias") || resize["antialias"].get<bool>();
  }
  const json &mean = manifest::list(prep, "mean"), &std = manifest::list(prep, "std");
  if (mean.size() != static_cast<size_t>(m.channels) || std.size() != static_cast<size_t>(m.channels))
    throw std::runtime_error("preprocessing mean and std must hold one value per input channel");
  for (int64_t c = 0; c < m.channels; ++c) {
    m.mean.push_back(static_cast<float>(manifest::as_number(mean[c], "preprocessing mean")));
    m.std.push_back(static_cast<float>(manifest::as_number(std[c], "preprocessing std")));
    if (!(std::isfinite(m.std.back()) && m.std.back() != 0.0f && std::isfinite(m.mean.back())))
      throw std::runtime_error("preprocessing mean must be finite and std finite and non-zero");
  }
}

inline Model load(const std::string& folder, const std::string& artifact_name) {
  const json doc = manifest::load(folder);
  Model m;
  if (!manifest::has(doc, "preprocessing") || !manifest::has(manifest::field(doc, "input"), "shape") ||
      (manifest::has(doc, "inputs") && manifest::list(doc, "inputs").size() != 1))
    throw std::runtime_error("this program feeds one image input through the manifest's preprocessing; this model "
                             "takes other inputs (see the manifest's 'inputs')");
  read_outputs(doc, m);
  read_geometry(doc, doc["preprocessing"], m);
  read_preprocessing(doc["preprocessing"], m);
  for (const auto& name : manifest::list(doc, "classes")) {
    if (!name.is_string()) throw std::runtime_error("manifest: classes must be strings");
    m.classes.push_back(name.get<std::string>());
  }
  const json& art = pick_artifact(doc, artifact_name);
  m.precision = manifest::text(art, "precision");
  apply_runtime_settings(doc, art);
  const std::string path = inside(folder, manifest::text(art, "path"));
  files::Regular(path, files::kArrayCap);  // a FIFO or device named as the artifact is refused, not waited on
  if (manifest::text(art, "runtime") == "aoti") {
    m.aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
  } else {
    m.module = torch::jit::load(path);
    m.module.eval();
  }
  return m;
}

}  // namespace model
