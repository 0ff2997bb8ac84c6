// Reads a NumPy .npy file (format versions 1-3, C order) into raw bytes plus its dtype and shape: the golden
// vectors are stored this way so an app needs no zip or NumPy library to check itself.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "files.hpp"

namespace npy {

struct Array {
  std::string descr;             // e.g. "<f4" (little-endian float32) or "|u1" (uint8)
  std::vector<int64_t> shape;
  std::vector<char> bytes;

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// The value of one key of the header's Python dict literal: a quoted string, a parenthesised tuple or a bare word.
inline std::string field(const std::string& header, const std::string& key) {
  const auto lacks = [&] { return std::runtime_error("npy header lacks a readable '" + key + "'"); };
  const size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw lacks();
  const size_t colon = header.find(':', at);
  const size_t start = colon == std::string::npos ? colon : header.find_first_not_of(' ', colon + 1);
  if (start == std::string::npos) throw lacks();
  const char open = header[start];
  const size_t end = open == '\'' ? header.find('\'', start + 1)
                     : open == '(' ? header.find(')', start)
                                   : header.find_first_of(",}", start);
  if (end == std::string::npos) throw lacks();
  return open == '\'' || open == '(' ? header.substr(start + 1, end - start - 1) : header.substr(start, end - start);
}

// One dimension of the header's shape tuple: decimal digits only, at most 18 of them (no overflow on the way).
inline int64_t dimension(const std::string& part, const std::string& path) {
  const size_t first = part.find_first_not_of(' '), last = part.find_last_not_of(' ');
  const std::string digits = part.substr(first, last - first + 1);
  if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error(path + " declares a shape that is not a tuple of whole numbers");
  return std::stoll(digits);
}

// item_size 0: taken from the dtype, which must then be uint8 or float32 (golden pixels may be either).
// Everything the header declares is checked against the file's size before anything is allocated, so a small
// file cannot make this program reserve gigabytes.
inline Array load(const std::string& path, size_t item_size) {
  files::Regular in(path, files::kArrayCap);
  char magic[8];
  in.read(magic, 8, path + " is not a .npy file");
  if (std::string(magic, 6) != "\x93NUMPY") throw std::runtime_error(path + " is not a .npy file");
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(len_bytes), magic[6] == 1 ? 2 : 4, path + " has a truncated header");
  for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > 65536 || header_len > in.left()) throw std::runtime_error(path + " declares a header longer than it is");
  std::string header(header_len, '\0');
  in.read(header.data(), header_len, path + " has a truncated header");
  Array a;
  a.descr = field(header, "descr");
  if (field(header, "fortran_order") != "False") throw std::runtime_error(path + " is not in C order");
  std::string dims = field(header, "shape");
  for (size_t i = 0; i < dims.size();) {
    size_t j = dims.find(',', i);
    std::string part = dims.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.find_first_not_of(' ') != std::string::npos) a.shape.push_back(dimension(part, path));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (item_size == 0) {
    if (a.descr != "|u1" && a.descr != "<f4") throw std::runtime_error(path + " is neither uint8 nor float32");
    item_size = a.descr == "<f4" ? 4 : 1;
  }
  // every dimension is checked against the bytes left before it multiplies: no product can overflow
  const std::string short_file = path + " is shorter than its shape says";
  uint64_t want = item_size;
  for (int64_t d : a.shape) {
    if (d != 0 && want > in.left() / static_cast<uint64_t>(d)) throw std::runtime_error(short_file);
    want *= static_cast<uint64_t>(d);
  }
  a.bytes.resize(static_cast<size_t>(want));
  in.read(a.bytes.data(), want, short_file);
  return a;
}

}  // namespace npy
