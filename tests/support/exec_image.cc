#include "support/exec_image.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

extern char** environ;

namespace atw::testing {

namespace {

std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // execve() then fails with ENOENT, and the child exits 127
}

}  // namespace

ExecImage::ExecImage(std::vector<std::string> argv, const std::map<std::string, std::string>& env)
    : argv_(std::move(argv)) {
  if (!argv_.empty()) path_ = find_in_path(argv_.front());
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!env.contains(entry.substr(0, entry.find('=')))) env_.push_back(entry);
  }
  for (const auto& [name, value] : env) env_.push_back(name + "=" + value);
  for (auto& a : argv_) argv_ptrs_.push_back(a.data());
  argv_ptrs_.push_back(nullptr);
  for (auto& e : env_) env_ptrs_.push_back(e.data());
  env_ptrs_.push_back(nullptr);
}

void ExecImage::exec() const {
  execve(path_.c_str(), argv_ptrs_.data(), env_ptrs_.data());
}

}  // namespace atw::testing
