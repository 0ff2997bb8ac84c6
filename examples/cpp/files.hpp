// Bounded reads of the files a folder names. A folder is data from elsewhere: a path in it may be a FIFO (open
// would block forever), a device (/dev/zero never ends) or a file far larger than any manifest, so every file is
// opened without blocking, must be a regular file, and is capped in size before a byte of it is read.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace files {

constexpr uint64_t kManifestCap = 64ull << 20;  // exportkit's own cap on a JSON file (limits.JSON_MAX_BYTES)
constexpr uint64_t kImageCap = 256ull << 20;    // a photo larger than this is not an input a classifier takes
constexpr uint64_t kArrayCap = 4ull << 30;      // golden arrays: 10,000 images of a large input at most

// A regular file opened for reading, its size known before anything is read.
class Regular {
 public:
  Regular(const std::string& path, uint64_t cap) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw std::runtime_error(path + " is not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > cap) {
      ::close(fd_);
      throw std::runtime_error(path + " is " + std::to_string(size_ >> 20) + " MiB, over this program's cap of " +
                               std::to_string(cap >> 20) + " MiB for it");
    }
  }
  Regular(const Regular&) = delete;
  Regular& operator=(const Regular&) = delete;
  ~Regular() { ::close(fd_); }

  uint64_t size() const { return size_; }
  uint64_t left() const { return size_ - done_; }
  const std::string& path() const { return path_; }

  // Exactly n bytes, or an error naming what was short: the size may shrink after it was read.
  void read(char* dst, uint64_t n, const std::string& short_message) {
    if (n > left()) throw std::runtime_error(short_message);
    for (uint64_t got = 0; got < n;) {
      const ssize_t r = ::read(fd_, dst + got, static_cast<size_t>(std::min<uint64_t>(n - got, 1u << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw std::runtime_error(short_message);
      got += static_cast<uint64_t>(r);
    }
    done_ += n;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0, done_ = 0;
};

inline std::string read_all(const std::string& path, uint64_t cap) {
  Regular file(path, cap);
  std::string bytes(static_cast<size_t>(file.size()), '\0');
  file.read(bytes.data(), file.size(), path + " changed while it was read");
  return bytes;
}

}  // namespace files
