// Reads a NumPy .npy file (format versions 1-3, C order) into raw bytes plus its dtype and shape: the golden
// vectors are stored this way so an app needs no zip or NumPy library to check itself.
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

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

inline std::string field(const std::string& header, const std::string& key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw std::runtime_error("npy header lacks '" + key + "'");
  size_t colon = header.find(':', at);
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (header[start] == '\'') return header.substr(start + 1, header.find('\'', start + 1) - start - 1);
  if (header[start] == '(') return header.substr(start + 1, header.find(')', start) - start - 1);
  return header.substr(start, header.find_first_of(",}", start) - start);
}

// item_size 0: taken from the dtype, which must then be uint8 or float32 (golden pixels may be either).
// Everything the header declares is checked against the file's size before anything is allocated, so a small
// file cannot make this program reserve gigabytes.
inline Array load(const std::string& path, size_t item_size) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::string(magic, 6) != "\x93NUMPY") throw std::runtime_error(path + " is not a .npy file");
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(len_bytes), magic[6] == 1 ? 2 : 4);
  for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > 65536 || header_len > file_size) throw std::runtime_error(path + " declares a header longer than it is");
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw std::runtime_error(path + " has a truncated header");
  Array a;
  a.descr = field(header, "descr");
  if (field(header, "fortran_order") != "False") throw std::runtime_error(path + " is not in C order");
  std::string dims = field(header, "shape");
  for (size_t i = 0; i < dims.size();) {
    size_t j = dims.find(',', i);
    std::string part = dims.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.find_first_not_of(' ') != std::string::npos) {
      const long long d = std::stoll(part);
      if (d < 0) throw std::runtime_error(path + " declares a negative dimension");
      a.shape.push_back(d);
    }
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (item_size == 0) {
    if (a.descr != "|u1" && a.descr != "<f4") throw std::runtime_error(path + " is neither uint8 nor float32");
    item_size = a.descr == "<f4" ? 4 : 1;
  }
  const uint64_t data_at = static_cast<uint64_t>(in.tellg());
  uint64_t want = item_size;
  for (int64_t d : a.shape) {
    if (d != 0 && want > (file_size - data_at) / static_cast<uint64_t>(d))
      throw std::runtime_error(path + " is shorter than its shape says");
    want *= static_cast<uint64_t>(d);
  }
  if (want > file_size - data_at) throw std::runtime_error(path + " is shorter than its shape says");
  a.bytes.resize(static_cast<size_t>(want));
  in.read(a.bytes.data(), static_cast<std::streamsize>(a.bytes.size()));
  if (!in) throw std::runtime_error(path + " is shorter than its shape says");
  return a;
}

}  // namespace npy
