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
//
// The pieces: model.hpp loads the artifact and feeds it, golden.hpp is --check, photo.hpp decodes and resizes
// photos, manifest.hpp, npy.hpp and files.hpp read the folder's files, each bounded before it is read.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "files.hpp"
#include "golden.hpp"
#include "model.hpp"
#include "photo.hpp"

namespace {

using model::Model;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
  auto number = [&]() -> int64_t {  // a header number: decimal digits, few enough that none overflows
    const std::string t = token();
    if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error(path + " has a malformed PPM/PGM header");
    return std::stoll(t);
  };
  const int64_t w = number(), h = number(), maxval = number();
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
  if (m.resize_library == model::kFloatResize)
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
  const std::string bytes = files::read_all(path, files::kImageCap);
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
    torch::Tensor scores = model::run_all(m, pixels.data(), 1).at(m.classifier)[0];
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
    Model model = model::load(folder, artifact);
    int status = check ? golden::check(model, folder) : 0;
    if (!images.empty()) classify_images(model, images, top, logits);
    return status;
  } catch (const manifest::json::exception& e) {  // a manifest value of the wrong type
    const std::string what = e.what();
    std::cerr << "error: manifest: " << what.substr(what.find(']') + 2) << "\n";
    return 3;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    std::cerr << "error: " << what.substr(0, what.find('\n')) << "\n";
    return 3;
  }
}
