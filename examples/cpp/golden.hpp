// --check: the artifact against the golden vectors the folder ships, every output held to the tolerance of the
// artifact's precision class. The golden pixels are preprocessed here, in C++, so the check covers this program's
// preprocessing as well as the artifact. Every golden file's shape is tied to the others and to the model's input
// before a value is read: a folder is data from elsewhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "model.hpp"
#include "npy.hpp"

namespace golden {

using manifest::json;

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

// The limits of the artifact's own precision class (golden.tolerances); folders built before it carry
// fp32_tolerance only.
struct Tolerance {
  std::string precision;  // the class whose limits these are
  double max_abs = INFINITY, min_cosine = 1.0, min_agreement = 1.0;
};

inline Tolerance tolerance(const json& golden, const std::string& precision) {
  const bool own = manifest::has(golden, "tolerances") && manifest::has(golden["tolerances"], precision);
  const json& tol = own ? golden["tolerances"][precision] : manifest::field(golden, "fp32_tolerance");
  Tolerance t;
  t.precision = own ? precision : "fp32";
  if (manifest::has(tol, "max_abs")) t.max_abs = manifest::number(tol, "max_abs");
  t.min_cosine = manifest::number(tol, "min_cosine");
  if (manifest::has(tol, "min_top1_agreement")) t.min_agreement = manifest::number(tol, "min_top1_agreement");
  return t;
}

// The golden values of every output: the classifier's are golden.plain.logits; a model with several outputs also
// lists one file per output in golden.plain.outputs (folders built before that field have the classifier's only).
inline std::vector<npy::Array> outputs(const json& plain, const std::string& folder, const model::Model& m) {
  std::vector<npy::Array> found;
  if (manifest::has(plain, "outputs")) {
    for (const auto& rel : manifest::list(plain, "outputs")) {
      if (!rel.is_string()) throw std::runtime_error("manifest: golden.plain.outputs must list file names");
      found.push_back(npy::load(model::inside(folder, rel.get<std::string>()), 4));
    }
  } else {
    found.push_back(npy::load(model::inside(folder, manifest::text(plain, "logits")), 4));
  }
  for (const auto& a : found)
    if (a.descr != "<f4" || a.shape.empty()) throw std::runtime_error("golden outputs must be float32 arrays");
  if (!manifest::has(plain, "outputs") && m.classifier != 0)
    throw std::runtime_error("the manifest lists several outputs but no golden file for each; rebuild the folder");
  if (found.size() != 1 && m.classifier >= found.size())
    throw std::runtime_error("the manifest's classifier output has no golden file");
  return found;
}

// The golden pixels as float values: uint8 ones as decoded, or float32 ones a float resize made, both exactly.
inline std::vector<float> pixel_values(const npy::Array& pixels) {
  std::vector<float> values(static_cast<size_t>(pixels.count()));
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = pixels.descr == "<f4" ? reinterpret_cast<const float*>(pixels.bytes.data())[i]
                                      : static_cast<float>(static_cast<uint8_t>(pixels.bytes[i]));
  return values;
}

// Runs the golden images through the artifact 32 at a time and measures each output's gap to its golden file.
inline std::vector<Gap> measure(model::Model& m, const std::vector<float>& values, const std::vector<npy::Array>& wants,
                                int64_t n) {
  const int64_t batch = 32;
  std::vector<Gap> gaps(wants.size());
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    std::vector<torch::Tensor> got = model::run_all(m, values.data() + start * m.channels * m.height * m.width, count);
    if (wants.size() == 1) got = {got.at(m.classifier)};
    if (got.size() != wants.size())
      throw std::runtime_error("the artifact gives " + std::to_string(got.size()) + " outputs, the golden files " +
                               std::to_string(wants.size()));
    for (size_t k = 0; k < wants.size(); ++k) {
      const int64_t width = got[k].numel() / count;
      if (got[k].scalar_type() != torch::kFloat32 ||
          width * wants[k].shape[0] != static_cast<int64_t>(wants[k].bytes.size() / 4))
        throw std::runtime_error("output " + std::to_string(k) + " of the artifact has " + std::to_string(width) +
                                 " float32 values per image; its golden file another count");
      const float* want = reinterpret_cast<const float*>(wants[k].bytes.data());
      for (int64_t i = 0; i < count; ++i)
        gaps[k].add(got[k].data_ptr<float>() + i * width, want + (start + i) * width, width);
    }
  }
  return gaps;
}

inline void print(const std::vector<Gap>& gaps, size_t head, bool ok, bool ranked, int64_t n, const Tolerance& t,
                  const std::vector<bool>& good) {
  const Gap& g = gaps[head];
  const std::string agreement =
      ranked ? "top-1 agreement " + std::to_string(g.agree) + "/" + std::to_string(n) + " (limit " +
                   std::to_string(t.min_agreement).substr(0, 4) + ")"
             : "no classifier: parity alone";
  std::printf("%s: %lld golden images, max abs error %.3g (limit %.3g), worst cosine %.7f (limit %.4f), %s, "
              "%s tolerance%s%s\n", ok ? "PASS" : "FAIL", static_cast<long long>(n), g.max_abs, t.max_abs,
              g.worst_cos, t.min_cosine, agreement.c_str(), t.precision.c_str(), g.finite ? "" : "; non-finite outputs",
              gaps.size() > 1 ? "; every output checked" : "");
  for (size_t k = 0; k < gaps.size(); ++k)
    if (k != head)
      std::printf("  output %zu: %s, max abs error %.3g, worst cosine %.7f%s\n", k, good[k] ? "ok" : "FAIL",
                  gaps[k].max_abs, gaps[k].worst_cos, gaps[k].finite ? "" : ", non-finite values");
}

inline int check(model::Model& m, const std::string& folder) {
  const json doc = manifest::load(folder);
  const json& golden = manifest::field(doc, "golden");
  if (!manifest::has(golden, "plain")) throw std::runtime_error("this folder has no plain golden vectors; rebuild it");
  const json& plain = golden["plain"];
  const npy::Array pixels = npy::load(model::inside(folder, manifest::text(plain, "pixels")), 0);
  const std::vector<npy::Array> wants = outputs(plain, folder, m);
  const size_t head = wants.size() == 1 ? 0 : m.classifier;  // the output the first line reports
  if (wants[head].shape[0] == 0)
    throw std::runtime_error("the folder has no golden images: there is nothing to check; rebuild it");
  for (const auto& w : wants)  // every output's rows are the images': a short file would be read past its end
    if (w.shape[0] != wants[head].shape[0])
      throw std::runtime_error("golden output files disagree with the golden images in their number of rows");
  if (pixels.shape.size() != 4 || pixels.shape[0] != wants[head].shape[0] ||
      pixels.shape[1] != m.height || pixels.shape[2] != m.width || pixels.shape[3] != m.channels)
    throw std::runtime_error("golden vectors do not match the manifest's input and output");
  const Tolerance t = tolerance(golden, m.precision);
  const bool ranked = m.has_classifier;  // top-1 agreement means something for class logits only
  const int64_t n = pixels.shape[0];
  const std::vector<Gap> gaps = measure(m, pixel_values(pixels), wants, n);
  std::vector<bool> good(gaps.size());
  bool ok = true;
  for (size_t k = 0; k < gaps.size(); ++k) {
    const Gap& g = gaps[k];
    good[k] = g.finite && g.max_abs <= t.max_abs && g.worst_cos >= t.min_cosine &&
              (k != head || !ranked || static_cast<double>(g.agree) >= t.min_agreement * static_cast<double>(n) - 1e-9);
    ok = ok && good[k];
  }
  print(gaps, head, ok, ranked, n, t, good);
  return ok ? 0 : 1;
}

}  // namespace golden
