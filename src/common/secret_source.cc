#include "common/secret_source.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace atw {

Result<std::string> read_secret_file(std::string_view setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::permanent("invalid_config", std::string(setting) + ": cannot read " + path +
                                                   ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = std::move(text).str();
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

Result<std::string> SecretSource::current() const {
  if (file.empty()) return value;
  return read_secret_file("secret file", file);
}

}  // namespace atw
