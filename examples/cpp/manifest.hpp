// manifest.json read with nlohmann/json (Debian: nlohmann-json3-dev), through accessors whose errors name the
// field: a folder is data from elsewhere, and "field 'scale' must be a number" tells its owner what to fix.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "files.hpp"

namespace manifest {

using json = nlohmann::json;

inline json load(const std::string& folder) {
  try {
    return json::parse(files::read_all(folder + "/manifest.json", files::kManifestCap));
  } catch (const json::exception& e) {  // "[json.exception.parse_error.101] parse error at line 1, ..."
    const std::string what = e.what();
    throw std::runtime_error("manifest.json: " + what.substr(what.find(']') + 2));
  }
}

// Present and not null.
inline bool has(const json& obj, const std::string& key) {
  return obj.is_object() && obj.contains(key) && !obj[key].is_null();
}

inline const json& field(const json& obj, const std::string& key) {
  if (!has(obj, key)) throw std::runtime_error("manifest: missing field '" + key + "'");
  return obj[key];
}

inline std::string text(const json& obj, const std::string& key) {
  const json& v = field(obj, key);
  if (!v.is_string()) throw std::runtime_error("manifest: field '" + key + "' must be a string");
  return v.get<std::string>();
}

// A value that must be a number, named by `what` in the error.
inline double as_number(const json& v, const std::string& what) {
  if (!v.is_number()) throw std::runtime_error("manifest: " + what + " must be a number");
  return v.get<double>();
}

inline double number(const json& obj, const std::string& key) { return as_number(field(obj, key), "field '" + key + "'"); }

// A whole number in [lo, hi]: checked before any cast, so no manifest value can overflow one.
inline int64_t whole(const json& v, const std::string& what, int64_t lo, int64_t hi) {
  bool fits = false;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    fits = u <= static_cast<uint64_t>(hi) && static_cast<int64_t>(u) >= lo;
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    fits = i >= lo && i <= hi;
  }
  if (!fits)
    throw std::runtime_error("manifest: " + what + " must be a whole number from " + std::to_string(lo) + " to " +
                             std::to_string(hi));
  return v.get<int64_t>();
}

inline const json& list(const json& obj, const std::string& key) {
  const json& v = field(obj, key);
  if (!v.is_array()) throw std::runtime_error("manifest: field '" + key + "' must be a list");
  return v;
}

}  // namespace manifest
