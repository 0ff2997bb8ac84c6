// Photos as they arrive (JPEG of any size) -> the model's pixels, exactly as exportkit's Python pipeline makes
// them: decoded by libjpeg-turbo (the decoder Pillow bundles: same pixels), the shorter side resized by
// torch::nn::functional::interpolate on contiguous NCHW float32 (the function the manifest's
// "torch.nn.functional.interpolate (float32)" names: same values, bit for bit), then a centre crop whose offsets
// round half to even, as Python's round() does. The result stays float32; it is never rounded to uint8.
#pragma once

#include <torch/torch.h>

#include <csetjmp>
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>  // JWRN_JPEG_EOF: the warning a truncated file gives

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace photo {

// The decoding contract's limit (exportkit.datasets.decode.MAX_PIXELS, Pillow's MAX_IMAGE_PIXELS there): checked
// against the header before a pixel is decoded, so a small file declaring a huge image is refused, not allocated.
constexpr int64_t kMaxPixels = 150'000'000;

struct Decoded {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;  // HWC
};

struct JpegError {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated = false;
};

inline void on_error(j_common_ptr info) {
  auto* err = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg only warns when the data ends early and fills the rest with grey; the decoding contract (manifest
// preprocessing.decode, as Pillow does) refuses such a file, so the warning is remembered. Other warnings, such as
// extraneous bytes before a marker, leave the pixels whole and are ignored, as Pillow ignores them.
inline void on_message(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegError*>(info->err)->truncated = true;
}

inline bool is_jpeg(const std::string& bytes) {
  return bytes.size() > 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8;
}

// RGB pixels of a JPEG held in memory (grayscale JPEGs are replicated to RGB, as Pillow's convert("RGB") does).
inline Decoded decode_jpeg(const std::string& bytes, const std::string& path) {
  jpeg_decompress_struct info;
  JpegError err;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  err.base.emit_message = on_message;
  Decoded out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&info);
    throw std::runtime_error(path + " is not a readable JPEG: " + err.message);
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    throw std::runtime_error(path + " is a CMYK JPEG, which the decoding contract refuses; give an RGB or grayscale one");
  }
  if (static_cast<int64_t>(info.image_width) * info.image_height > kMaxPixels) {
    const std::string size = std::to_string(info.image_width) + "x" + std::to_string(info.image_height);
    jpeg_destroy_decompress(&info);
    throw std::runtime_error(path + " is " + size + ", more than the decoding contract's " +
                             std::to_string(kMaxPixels) + " pixels");
  }
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  out.height = info.output_height;
  out.width = info.output_width;
  out.rgb.resize(static_cast<size_t>(out.height * out.width * 3));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.rgb.data() + static_cast<size_t>(info.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (err.truncated) throw std::runtime_error(path + " is truncated: the decoding contract refuses it");
  return out;
}

// The manifest's resize: shorter side to `shorter` pixels (the long side scaled and truncated), then a centre
// crop of crop_h x crop_w, antialiased or not as the manifest says. Returns HWC float32 RGB.
inline std::vector<float> resize_and_crop(const Decoded& image, int64_t shorter, const std::string& filter,
                                          bool antialias, int64_t crop_h, int64_t crop_w) {
  int64_t h = shorter, w = shorter;
  if (image.height <= image.width)
    w = static_cast<int64_t>(static_cast<double>(shorter * image.width) / static_cast<double>(image.height));
  else
    h = static_cast<int64_t>(static_cast<double>(shorter * image.height) / static_cast<double>(image.width));
  if (h < crop_h || w < crop_w || h * w > kMaxPixels)
    throw std::runtime_error("the manifest's resize to a shorter side of " + std::to_string(shorter) + " makes " +
                             std::to_string(w) + "x" + std::to_string(h) + " of this image, which cannot be cropped "
                             "to the model's " + std::to_string(crop_w) + "x" + std::to_string(crop_h));
  torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3},
                                     torch::kUInt8)
                        .permute({2, 0, 1})
                        .unsqueeze(0)
                        .to(torch::kFloat32)
                        .contiguous();
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).align_corners(false).antialias(antialias);
  if (filter == "bilinear") options.mode(torch::kBilinear);
  else if (filter == "bicubic") options.mode(torch::kBicubic);
  else throw std::runtime_error("resize filter '" + filter + "' is not one this program reproduces");
  torch::Tensor resized = F::interpolate(x, options);
  const int64_t top = static_cast<int64_t>(std::nearbyint((h - crop_h) / 2.0));   // half to even
  const int64_t left = static_cast<int64_t>(std::nearbyint((w - crop_w) / 2.0));
  torch::Tensor crop = resized[0].slice(1, top, top + crop_h).slice(2, left, left + crop_w).permute({1, 2, 0})
                           .contiguous();
  return std::vector<float>(crop.data_ptr<float>(), crop.data_ptr<float>() + crop.numel());
}

}  // namespace photo
